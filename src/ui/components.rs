pub mod app_shell;
pub mod confirm_dialog;
pub mod copy_button;
pub mod dialog;
pub mod error_notice;
pub mod hydrated;
pub mod popup;
pub mod settings_tabs;
