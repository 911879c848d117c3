pub mod app_shell;
pub mod error_notice;
