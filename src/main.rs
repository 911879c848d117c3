use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    gatehouse::server::cli::run().await
}
