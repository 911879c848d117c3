use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::instance::{InstanceView, get_instance_info};
use crate::ui::components::error_notice::ErrorNotice;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| get_instance_info());
    view! {
        <Title text="Dashboard" />
        <h1 class="mb-6 text-2xl font-semibold">"Dashboard"</h1>
        <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match info.await {
                    Ok(info) => view! { <InstanceFacts info /> }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn format_uptime(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (d, h, m) = (
        seconds / 86_400,
        (seconds % 86_400) / 3_600,
        (seconds % 3_600) / 60,
    );
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

#[component]
fn InstanceFacts(info: InstanceView) -> impl IntoView {
    let rows = [
        (
            "Authentication",
            info.auth_type.label().to_string(),
            "fact-auth",
        ),
        (
            "Storage",
            format!("{} ({})", info.storage_backend, info.storage_location),
            "fact-storage",
        ),
        ("Version", info.version.clone(), "fact-version"),
        ("Public URL", info.public_url.clone(), "fact-public-url"),
        (
            "Up for",
            format_uptime(info.now - info.started_at),
            "fact-uptime",
        ),
    ];
    view! {
        <section aria-labelledby="instance-heading" class="rounded-lg border border-slate-200 bg-white shadow-sm">
            <h2 id="instance-heading" class="border-b border-slate-200 px-4 py-3 text-sm font-semibold text-slate-700">
                "This instance"
            </h2>
            <dl class="divide-y divide-slate-100">
                {rows
                    .into_iter()
                    .map(|(label, value, id)| view! {
                        <div class="grid grid-cols-3 gap-4 px-4 py-3 text-sm">
                            <dt class="font-medium text-slate-500">{label}</dt>
                            <dd class="col-span-2 break-all text-slate-900" data-testid=id>{value}</dd>
                        </div>
                    })
                    .collect_view()}
            </dl>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::format_uptime;

    #[test]
    fn uptime() {
        assert_eq!(format_uptime(59), "0 min");
        assert_eq!(format_uptime(3_660), "1 h 1 min");
        assert_eq!(format_uptime(90_000), "1 d 1 h");
        assert_eq!(format_uptime(-5), "0 min");
    }
}
