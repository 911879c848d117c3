use std::future::Future;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::ApiError;
use crate::ui::components::dialog::Dialog;
use crate::ui::components::error_notice::ErrorNotice;

pub const BUTTON: &str = "rounded-md bg-indigo-600 px-3 py-2 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500 disabled:opacity-50";
pub const BUTTON_DANGER: &str = "rounded-md bg-red-600 px-3 py-2 text-sm font-semibold text-white shadow-sm hover:bg-red-500 disabled:opacity-50";
pub const INPUT: &str = "block w-full rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-1 focus:ring-indigo-500";
pub const BUTTON_PLAIN: &str = "rounded-md border border-slate-300 bg-white px-3 py-2 text-sm font-medium text-slate-700 hover:bg-slate-100";

/// "Are you sure?" for an action that changes something: runs `action` on confirmation,
/// shows its error if it fails, and calls `done` when it succeeded (or `cancel`).
#[component]
pub fn ConfirmDialog<A, Fut>(
    title: String,
    id: &'static str,
    body: String,
    confirm: &'static str,
    #[prop(default = true)] danger: bool,
    action: A,
    done: Callback<()>,
    cancel: Callback<()>,
) -> impl IntoView
where
    A: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ApiError>> + 'static,
{
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let run = move |_| {
        busy.set(true);
        let action = action.clone();
        spawn_local(async move {
            match action().await {
                Ok(()) => done.run(()),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <Dialog title id>
            <p class="mb-4 text-sm text-slate-700">{body}</p>
            {move || error.get().map(|e| view! { <ErrorNotice error=e /> })}
            <div class="mt-4 flex justify-end gap-3">
                <button type="button" class=BUTTON_PLAIN on:click=move |_| cancel.run(())>"Cancel"</button>
                <button type="button" class=if danger { BUTTON_DANGER } else { BUTTON } disabled=move || busy.get() on:click=run>
                    {confirm}
                </button>
            </div>
        </Dialog>
    }
}
