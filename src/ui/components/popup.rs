//! The authorization popup: opened synchronously in the click handler (so popup blockers let
//! it through), pointed at the provider once the server has prepared the request, and heard
//! back from through `postMessage` from Gatehouse's own origin.

/// A popup window, opened blank.
#[derive(Clone)]
pub struct Popup {
    #[cfg(feature = "hydrate")]
    window: web_sys::Window,
}

impl Popup {
    /// Opens an empty popup; `None` when the browser blocked it (or on the server).
    pub fn open() -> Option<Popup> {
        #[cfg(feature = "hydrate")]
        {
            let window = web_sys::window()?
                .open_with_url_and_target_and_features(
                    "about:blank",
                    "gatehouse-connect",
                    "popup,width=560,height=720",
                )
                .ok()
                .flatten()?;
            Some(Popup { window })
        }
        #[cfg(not(feature = "hydrate"))]
        None
    }

    pub fn navigate(&self, url: &str) {
        #[cfg(feature = "hydrate")]
        {
            let _ = self.window.location().set_href(url);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = url;
    }

    pub fn close(&self) {
        #[cfg(feature = "hydrate")]
        {
            let _ = self.window.close();
        }
    }
}

/// What the callback page tells its opener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionMessage {
    pub id: String,
    pub ok: bool,
    pub error: Option<String>,
}

/// Calls `on_message` for every connection message from this origin (others are ignored).
pub fn listen(on_message: impl Fn(ConnectionMessage) + 'static) {
    #[cfg(feature = "hydrate")]
    {
        use leptos::prelude::window_event_listener;
        let handle =
            window_event_listener(leptos::ev::message, move |ev: web_sys::MessageEvent| {
                let Some(own) = web_sys::window().and_then(|w| w.location().origin().ok()) else {
                    return;
                };
                if ev.origin() != own {
                    return;
                }
                let data = ev.data();
                let get = |k: &str| js_sys::Reflect::get(&data, &k.into()).ok();
                if get("type").and_then(|v| v.as_string()).as_deref()
                    != Some("gatehouse:connection")
                {
                    return;
                }
                on_message(ConnectionMessage {
                    id: get("id").and_then(|v| v.as_string()).unwrap_or_default(),
                    ok: get("ok").and_then(|v| v.as_bool()).unwrap_or(false),
                    error: get("error").and_then(|v| v.as_string()),
                });
            });
        leptos::prelude::on_cleanup(move || handle.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = on_message;
}
