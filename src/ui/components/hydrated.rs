//! The mark that tells tests (and anyone curious) that a page is interactive.

use leptos::prelude::*;

/// Sets `<html data-hydrated="true">` once the calling page has hydrated. Each page calls it
/// itself rather than the app root: a lazy route's code arrives after the root has hydrated,
/// and a mark set by the root would let a test click a button that does nothing yet.
pub fn mark_hydrated() {
    // Effects run only in the browser, after the component that made them has hydrated.
    Effect::new(|_| {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-hydrated", "true");
        }
    });
}
