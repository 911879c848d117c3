use leptos::prelude::*;

/// Puts `text` on the clipboard; says "Copied" for a moment afterwards.
#[component]
pub fn CopyButton(
    text: String,
    #[prop(default = "Copy")] label: &'static str,
    #[prop(optional)] testid: &'static str,
) -> impl IntoView {
    let (copied, set_copied) = signal(false);
    let on_click = move |_| {
        if copy_to_clipboard(&text) {
            set_copied.set(true);
            set_timeout(
                move || set_copied.set(false),
                std::time::Duration::from_secs(2),
            );
        }
    };
    view! {
        <button
            type="button"
            data-testid=testid
            on:click=on_click
            class="shrink-0 rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium text-slate-700 hover:bg-slate-100"
        >
            {move || if copied.get() { "Copied" } else { label }}
        </button>
    }
}

/// The asynchronous Clipboard API where the browser has it (secure contexts); false otherwise,
/// and the value stays visible to copy by hand.
#[cfg(feature = "hydrate")]
fn copy_to_clipboard(text: &str) -> bool {
    use wasm_bindgen::JsCast;
    let Some(window) = web_sys::window() else {
        return false;
    };
    let navigator = window.navigator();
    let Ok(clipboard) = js_sys::Reflect::get(&navigator, &"clipboard".into()) else {
        return false;
    };
    if clipboard.is_undefined() {
        return false;
    }
    match js_sys::Reflect::get(&clipboard, &"writeText".into())
        .map(|f| f.dyn_into::<js_sys::Function>())
    {
        Ok(Ok(write)) => write.call1(&clipboard, &text.into()).is_ok(),
        _ => false,
    }
}

#[cfg(not(feature = "hydrate"))]
fn copy_to_clipboard(_text: &str) -> bool {
    false
}
