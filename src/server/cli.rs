//! The `gatehouse` command: `serve` (default), `hash-password`, `generate-secret-key`,
//! `copy-data`, `audit tail|export`, `rotate-secret-key`, `api-tokens create|list|delete`,
//! `connections list|token`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use futures::StreamExt;
use tracing_subscriber::EnvFilter;

use crate::model::audit::{AUDIT_PAGE_MAX, AuditEventView, AuditFilter};
use crate::server::audit;
use crate::server::auth::password::hash_password;
use crate::server::auth::{
    ANONYMOUS, Identity, NewTokenRequest, create_token, delete_token, list_tokens,
};
use crate::server::clock::SystemClock;
use crate::server::config::{
    ApiTokensCommand, AuditCommand, AuditFilterArgs, AuthConfig, Cli, Command, Config,
    ConnectionsCommand, LogFormat,
};
use crate::server::db::copy::copy_all;
use crate::server::db::{DatabaseConfig, Db};
use crate::server::error::AppError;
use crate::server::secrets::MasterKey;
use crate::server::secrets::rotation::{self, Rotated};
use crate::server::startup::{Application, StartupError};
use crate::server::state::AppState;

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::HashPassword => hash_password_command(),
        Command::GenerateSecretKey => {
            println!("{}", MasterKey::generate_hex());
            ExitCode::SUCCESS
        }
        Command::Serve => serve(&cli).await,
        Command::CopyData { to } => copy_data(&cli, &to).await,
        Command::Audit { command } => audit_command(&cli, command).await,
        Command::RotateSecretKey => rotate_secret_key(&cli).await,
        Command::ApiTokens { command } => api_tokens_command(&cli, command).await,
        Command::Connections { command } => connections_command(&cli, command).await,
    }
}

/// The store of `DATABASE_URL`, for a command that works on it; the exit code when it cannot.
async fn store(cli: &Cli) -> Result<Db, ExitCode> {
    Db::connect(&settings(cli)?.database).await.map_err(failed)
}

/// The state a command that acts like the server needs (`api-tokens`, `connections`).
async fn headless(cli: &Cli) -> Result<AppState, ExitCode> {
    Application::headless(settings(cli)?, Arc::new(SystemClock))
        .await
        .map_err(failed)
}

/// The settings, or why not on stderr with exit code 2 (the environment is wrong).
fn settings(cli: &Cli) -> Result<Config, ExitCode> {
    Config::parse(&cli.settings).map_err(|e| {
        eprintln!("gatehouse: {e}");
        ExitCode::from(2)
    })
}

/// What could not be opened, on stderr; exit code 1.
fn failed(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("gatehouse: {e}");
    ExitCode::FAILURE
}

/// A command's failure: its message on stderr, exit code 1 (2 for what was asked wrongly).
fn refused(e: AppError) -> ExitCode {
    eprintln!("gatehouse: {e}");
    match e {
        AppError::BadRequest(_) | AppError::NotFound(_) | AppError::Conflict(_) => {
            ExitCode::from(2)
        }
        _ => ExitCode::FAILURE,
    }
}

/// Who runs a command that acts on nobody's behalf, for the audit trail: the account on
/// this machine.
fn operator() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON"));
}

fn when(at: Option<i64>) -> String {
    at.map(crate::util::format_utc_seconds)
        .unwrap_or_else(|| "-".into())
}

async fn api_tokens_command(cli: &Cli, command: ApiTokensCommand) -> ExitCode {
    let state = match headless(cli).await {
        Ok(state) => state,
        Err(code) => return code,
    };
    match command {
        ApiTokensCommand::Create {
            name,
            scopes,
            expires_in_days,
            owner,
            admin_groups,
            json,
        } => {
            let owner = match (owner, &state.config.auth) {
                (Some(owner), AuthConfig::Oauth2(_)) => owner,
                (Some(owner), AuthConfig::Basic(b)) if owner == b.username => owner,
                (Some(owner), AuthConfig::None) if owner == ANONYMOUS => owner,
                (Some(owner), auth) => {
                    eprintln!(
                        "gatehouse: with AUTH_TYPE={} the only person is {:?}, not {owner:?}",
                        auth.auth_type().as_str(),
                        match auth {
                            AuthConfig::Basic(b) => b.username.as_str(),
                            _ => ANONYMOUS,
                        }
                    );
                    return ExitCode::from(2);
                }
                (None, AuthConfig::Basic(b)) => b.username.clone(),
                (None, AuthConfig::None) => ANONYMOUS.to_string(),
                (None, AuthConfig::Oauth2(_)) => {
                    eprintln!(
                        "gatehouse: with AUTH_TYPE=oauth2 name whom the token acts as: --owner EMAIL"
                    );
                    return ExitCode::from(2);
                }
            };
            let caller = Identity::command_line(&owner, admin_groups);
            let request = NewTokenRequest {
                name,
                scopes: (!scopes.is_empty()).then_some(scopes),
                expires_in_days,
                expires_at: None,
            };
            let created = match create_token(&state, request, &caller).await {
                Ok(created) => created,
                Err(e) => return refused(e),
            };
            if json {
                print_json(&created);
            } else {
                // The value alone on stdout, for `TOKEN=$(gatehouse api-tokens create …)`.
                println!("{}", created.value);
                eprintln!(
                    "Created API token {} ({:?}, id {}) acting as {owner}; this is the only time its value is shown.",
                    created.token.hint, created.token.name, created.token.id
                );
            }
            ExitCode::SUCCESS
        }
        ApiTokensCommand::List { json } => {
            let caller = Identity::command_line(&operator(), Vec::new());
            let tokens = match list_tokens(&state, &caller).await {
                Ok(tokens) => tokens,
                Err(e) => return refused(e),
            };
            if json {
                print_json(&tokens);
                return ExitCode::SUCCESS;
            }
            println!(
                "{:<26} {:<24} {:<28} {:<24} {:<20} {:<20} hint",
                "id", "name", "scopes", "owner", "last used", "expires"
            );
            for t in &tokens {
                let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
                let expires = match (t.expired, t.expires_at) {
                    (true, _) => "expired".to_string(),
                    (false, at) => when(at),
                };
                println!(
                    "{:<26} {:<24} {:<28} {:<24} {:<20} {:<20} {}",
                    t.id,
                    t.name,
                    scopes.join(","),
                    t.created_by,
                    when(t.last_used_at),
                    expires,
                    t.hint
                );
            }
            ExitCode::SUCCESS
        }
        ApiTokensCommand::Delete { id } => {
            let caller = Identity::command_line(&operator(), Vec::new());
            if let Err(e) = delete_token(&state, &id, &caller).await {
                return refused(e);
            }
            crate::server::gateway::end_token_sessions(&state, &id).await;
            println!("Deleted API token {id}.");
            ExitCode::SUCCESS
        }
    }
}

async fn connections_command(cli: &Cli, command: ConnectionsCommand) -> ExitCode {
    let state = match headless(cli).await {
        Ok(state) => state,
        Err(code) => return code,
    };
    match command {
        ConnectionsCommand::List { json } => {
            let caller = Identity::command_line(&operator(), Vec::new());
            let overview = match crate::server::connections::overview(&state, &caller).await {
                Ok(overview) => overview,
                Err(e) => return refused(e),
            };
            if json {
                print_json(&overview.items);
                return ExitCode::SUCCESS;
            }
            println!(
                "{:<26} {:<24} {:<24} {:<20} {:<20} {:>8}  last error",
                "id", "name", "status", "last refresh", "next refresh", "failures"
            );
            for c in &overview.items {
                let last = c
                    .grant
                    .as_ref()
                    .map(|g| g.refreshed_at.unwrap_or(g.obtained_at));
                println!(
                    "{:<26} {:<24} {:<24} {:<20} {:<20} {:>8}  {}",
                    c.id,
                    c.name,
                    c.status.label(),
                    when(last),
                    when(c.next_refresh_at),
                    c.failures,
                    c.last_error.as_deref().unwrap_or("")
                );
                for g in &c.grants {
                    println!(
                        "{:<26} {:<24} {:<24} {:<20} {:<20} {:>8}  {}",
                        "",
                        format!("  {}", g.person),
                        g.status.label(),
                        when(Some(g.refreshed_at.unwrap_or(g.obtained_at))),
                        when(g.next_refresh_at),
                        g.failures,
                        g.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            ExitCode::SUCCESS
        }
        ConnectionsCommand::Token {
            connection,
            person,
            force,
            json,
        } => {
            let caller = Identity::command_line(&operator(), Vec::new());
            let fresh = match crate::server::connections::fresh_token(
                &state,
                &caller,
                &connection,
                person.as_deref(),
                force,
            )
            .await
            {
                Ok(fresh) => fresh,
                Err(e) => return refused(e),
            };
            if json {
                let now = state.now();
                print_json(&serde_json::json!({
                    "access_token": fresh.access_token.expose(),
                    "token_type": fresh.token_type,
                    "expires_at": fresh.expires_at,
                    "expires_in": fresh.expires_at.map(|at| (at - now).max(0)),
                    "scope": fresh.scope,
                }));
            } else {
                println!("{}", fresh.access_token.expose());
            }
            ExitCode::SUCCESS
        }
    }
}

/// `gatehouse rotate-secret-key`: re-seals under SECRET_KEY what SECRET_KEY_PREVIOUS opens.
async fn rotate_secret_key(cli: &Cli) -> ExitCode {
    let config = match settings(cli) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let Some(current) = config.secret_key.clone() else {
        eprintln!(
            "gatehouse: rotate-secret-key needs SECRET_KEY (the new key) and SECRET_KEY_PREVIOUS (the old ones)"
        );
        return ExitCode::from(2);
    };
    if config.secret_key_previous.is_empty() {
        eprintln!(
            "gatehouse: SECRET_KEY_PREVIOUS is not set: with no old key to open values with, there is nothing to re-seal"
        );
        return ExitCode::from(2);
    }
    let db = match Db::connect(&config.database).await {
        Ok(db) => db,
        Err(e) => return failed(e),
    };
    let rotation = match rotation::rotate(
        &db,
        &current,
        &config.secret_key_previous,
        crate::server::oauth_as::SUCCESSOR_PURPOSE,
    )
    .await
    {
        Ok(rotation) => rotation,
        Err(e) => {
            eprintln!("gatehouse: rotate-secret-key: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = &rotation.columns;
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>10}",
        "column", "re-sealed", "current", "changed", "unreadable"
    );
    let mut total = Rotated::default();
    for r in report {
        println!(
            "{:<40} {:>9} {:>9} {:>9} {:>10}",
            r.column, r.resealed, r.current, r.changed, r.unreadable
        );
        total.resealed += r.resealed;
        total.current += r.current;
        total.changed += r.changed;
        total.unreadable += r.unreadable;
    }
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>10}",
        "total", total.resealed, total.current, total.changed, total.unreadable
    );
    println!(
        "Re-sealed {} values under SECRET_KEY in {} passes.",
        total.resealed, rotation.passes
    );
    if !rotation.settled {
        eprintln!(
            "gatehouse: values were still being written under an old key after {} passes; run rotate-secret-key again",
            rotation.passes
        );
        return ExitCode::FAILURE;
    }
    if total.unreadable > 0 {
        eprintln!(
            "gatehouse: {} values open with none of the keys given; they were left as they are",
            total.unreadable
        );
        return ExitCode::FAILURE;
    }
    println!(
        "Keep SECRET_KEY_PREVIOUS set until sessions and tokens signed under the old key have expired (sessions: 24 hours, MCP access tokens: 1 hour), then remove it."
    );
    ExitCode::SUCCESS
}

fn audit_filter(args: AuditFilterArgs) -> AuditFilter {
    AuditFilter {
        action: args.action,
        actor: args.actor,
        target: args.target,
        outcome: args.outcome,
        since: args.since,
        until: args.until,
        ..AuditFilter::default()
    }
}

/// One event as a line of text: time, outcome, action, who, target, from where, detail.
fn audit_line(e: &AuditEventView) -> String {
    let who = match &e.actor {
        Some(a) => format!("{}:{a}", e.actor_kind),
        None => e.actor_kind.clone(),
    };
    let target = match (&e.target_kind, &e.target) {
        (Some(k), Some(t)) => format!(" {k}:{t}"),
        _ => String::new(),
    };
    let from = e
        .address
        .as_deref()
        .map(|a| format!(" from {a}"))
        .unwrap_or_default();
    let detail = e
        .detail
        .as_ref()
        .map(|d| format!(" {d}"))
        .unwrap_or_default();
    format!(
        "{} {:<7} {} by {who}{target}{from}{detail}",
        crate::util::format_utc_seconds(e.at),
        e.outcome,
        e.action
    )
}

async fn audit_command(cli: &Cli, command: AuditCommand) -> ExitCode {
    let db = match store(cli).await {
        Ok(db) => db,
        Err(code) => return code,
    };
    let failed = |e: AppError| {
        eprintln!("gatehouse: audit: {}", e.into_api_error().message());
        ExitCode::FAILURE
    };
    match command {
        AuditCommand::Export { filter } => {
            let lines = match audit::export(db, audit_filter(filter)) {
                Ok(lines) => lines,
                Err(e) => return failed(e),
            };
            let mut lines = std::pin::pin!(lines);
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = lines.next().await {
                match chunk {
                    Ok(text) => {
                        if out.write_all(text.as_bytes()).is_err() {
                            // The reader went away (a pipe to `head`): done.
                            return ExitCode::SUCCESS;
                        }
                    }
                    Err(e) => return failed(e),
                }
            }
            ExitCode::SUCCESS
        }
        AuditCommand::Tail {
            lines,
            follow,
            json,
            filter,
        } => {
            let show = |e: &AuditEventView| {
                if json {
                    println!("{}", serde_json::to_string(e).expect("JSON"));
                } else {
                    println!("{}", audit_line(e));
                }
            };
            let filter = audit_filter(filter);
            let first = AuditFilter {
                limit: Some(lines.clamp(1, AUDIT_PAGE_MAX)),
                ..filter.clone()
            };
            let page = match audit::list(&db, &first).await {
                Ok(page) => page,
                Err(e) => return failed(e),
            };
            page.events.iter().rev().for_each(show);
            if !follow {
                return ExitCode::SUCCESS;
            }
            // Ids sort by the time an event was stamped, not by when it was committed (a slow
            // step, another replica): each poll reads again a window back from the newest
            // event seen, and prints what it has not printed yet.
            let mut newest = page.events.first().map(|e| e.at).or(filter.since);
            // The first read of the window only notes what is there up to the tail's newest
            // line: older than the lines printed, it is not news. What was committed since
            // the tail was read (the first read may come after it) is.
            let tail_newest = page.events.first().map(|e| e.id.clone());
            let mut shown: Vec<(i64, String)> = Vec::new();
            let mut first_round = true;
            loop {
                if !first_round {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                let since = newest.map(|at| at - FOLLOW_WINDOW_SECS);
                let mut fresh: Vec<AuditEventView> = Vec::new();
                let mut cursor = None;
                loop {
                    let window = AuditFilter {
                        since,
                        cursor: cursor.take(),
                        limit: Some(AUDIT_PAGE_MAX),
                        ..filter.clone()
                    };
                    let page = match audit::list(&db, &window).await {
                        Ok(page) => page,
                        Err(e) => return failed(e),
                    };
                    fresh.extend(
                        page.events
                            .into_iter()
                            .filter(|e| !shown.iter().any(|(_, id)| *id == e.id)),
                    );
                    match page.next_cursor {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                fresh.sort_by(|a, b| a.id.cmp(&b.id));
                for event in &fresh {
                    if !first_round || tail_newest.as_ref().is_none_or(|t| event.id > *t) {
                        show(event);
                    }
                    newest = Some(newest.map_or(event.at, |n| n.max(event.at)));
                    shown.push((event.at, event.id.clone()));
                }
                // What is older than the window is never read again: no need to remember it.
                if let Some(at) = newest {
                    shown.retain(|(seen, _)| *seen >= at - FOLLOW_WINDOW_SECS);
                }
                first_round = false;
            }
        }
    }
}

/// How far back `audit tail --follow` reads again on each poll.
const FOLLOW_WINDOW_SECS: i64 = 30;

/// `gatehouse copy-data --to postgres://…`: the source is `DATABASE_URL`.
async fn copy_data(cli: &Cli, to: &str) -> ExitCode {
    let config = match settings(cli) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let target = match DatabaseConfig::from_url(to, Some(2)) {
        Ok(t) if t.is_postgres() => t,
        Ok(_) => {
            eprintln!("gatehouse: --to must be a postgres:// URL");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("gatehouse: invalid --to: {e}");
            return ExitCode::from(2);
        }
    };
    let from = match Db::connect(&config.database).await {
        Ok(db) => db,
        Err(e) => return failed(e),
    };
    let into = match Db::connect(&target).await {
        Ok(db) => db,
        Err(e) => return failed(e),
    };
    match copy_all(&from, &into).await {
        Ok(copied) => {
            println!(
                "Copied {} at {} into {} at {}:",
                config.database.backend_name(),
                config.database.location(),
                target.backend_name(),
                target.location()
            );
            let mut total = 0;
            for (table, rows) in copied {
                println!("  {table:<22} {rows:>8} rows");
                total += rows;
            }
            println!("  {:<22} {total:>8} rows", "total");
            println!(
                "Start Gatehouse with DATABASE_URL set to the target and the same SECRET_KEY."
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gatehouse: copy-data: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: &Cli) -> ExitCode {
    let config = match settings(cli) {
        Ok(config) => config,
        Err(code) => return code,
    };
    init_tracing(config.log_format);
    let app = match Application::build(config, Arc::new(SystemClock)).await {
        Ok(app) => app,
        // A file a setting names is an invalid setting too: same line, same exit code.
        Err(StartupError::Config(e)) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("gatehouse: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let state = app.state();
    tracing::info!(
        listen = %app.local_addr(),
        public_url = %state.public_origin,
        auth = state.config.auth.auth_type().as_str(),
        store = state.config.database.backend_name(),
        database = %state.config.database.location(),
        hosts = %state.hosts.describe(),
        "Gatehouse {} is up: open {}/",
        env!("CARGO_PKG_VERSION"),
        state.public_origin,
    );
    if state.config.public_url.is_none() && !app.local_addr().ip().is_loopback() {
        tracing::warn!(
            "listening on {} without PUBLIC_URL: requests are answered only for {}; set PUBLIC_URL to the name people use (or add names to ALLOWED_HOSTS)",
            app.local_addr(),
            state.hosts.describe()
        );
    }
    match app.run_until(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("server error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn hash_password_command() -> ExitCode {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        match rpassword::prompt_password("Password: ") {
            Ok(p) => p,
            Err(e) => {
                eprintln!("gatehouse: cannot read the password: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let mut line = String::new();
        if let Err(e) = stdin.lock().read_line(&mut line) {
            eprintln!("gatehouse: cannot read the password from stdin: {e}");
            return ExitCode::FAILURE;
        }
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        eprintln!("gatehouse: the password is empty");
        return ExitCode::FAILURE;
    }
    println!("{}", hash_password(&password));
    ExitCode::SUCCESS
}
