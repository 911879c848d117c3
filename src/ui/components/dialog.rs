use leptos::prelude::*;

/// A modal dialog: a dimmed backdrop and a panel. The caller decides when it is shown.
#[component]
pub fn Dialog(
    /// Heading, also the dialog's accessible name.
    title: String,
    /// Test hook and the heading's id prefix.
    id: &'static str,
    children: Children,
) -> impl IntoView {
    let heading = format!("{id}-title");
    let labelled_by = heading.clone();
    view! {
        <div class="fixed inset-0 z-40 flex items-center justify-center bg-slate-900/40 p-4">
            <div
                role="dialog"
                aria-modal="true"
                aria-labelledby=labelled_by
                data-testid=id
                class="max-h-full w-full max-w-xl overflow-y-auto rounded-lg bg-white p-6 shadow-xl"
            >
                <h2 id=heading class="mb-4 text-lg font-semibold">{title}</h2>
                {children()}
            </div>
        </div>
    }
}
