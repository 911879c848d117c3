//! The user interface: routed pages and the components they share.

pub mod components;
pub mod pages;
