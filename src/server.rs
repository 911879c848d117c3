//! Everything that runs only on the server. Split by domain; see docs/ARCHITECTURE.md.

pub mod assets;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod db;
pub mod error;
pub mod files;
pub mod gateway;
pub mod html;
pub mod http;
pub mod metrics;
pub mod net;
pub mod oauth_as;
pub mod rest;
pub mod routes;
pub mod secrets;
pub mod startup;
pub mod state;
