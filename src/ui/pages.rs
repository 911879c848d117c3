pub mod dashboard_page;
pub mod login_page;
pub mod not_found_page;
