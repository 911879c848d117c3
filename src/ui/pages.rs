pub mod connections_page;
pub mod consent_page;
pub mod dashboard_page;
pub mod login_page;
pub mod not_found_page;
pub mod settings_authentication_page;
pub mod settings_oauth_clients_page;
pub mod settings_sessions_page;
