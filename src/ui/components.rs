pub mod app_shell;
pub mod copy_button;
pub mod dialog;
pub mod error_notice;
