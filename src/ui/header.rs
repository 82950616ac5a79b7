//! The bar at the top of every signed-in page.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use crate::api::auth::{Logout, get_current_user};

/// The bar at the top; `current` names the page being shown ("broadcasts", "customers").
#[component]
pub fn AppHeader(current: &'static str) -> impl IntoView {
    let user = Resource::new(|| (), |_| get_current_user());
    view! {
        <header class="topbar">
            <a href="/" class="brand">"Herald"</a>
            <nav aria-label="Main">
                <a href="/" aria-current=(current == "broadcasts").then_some("page")>"Broadcasts"</a>
                <a href="/dashboard" aria-current=(current == "dashboard").then_some("page")>"Dashboard"</a>
                <a href="/customers" aria-current=(current == "customers").then_some("page")>"Customers"</a>
                <a href="/labels" aria-current=(current == "labels").then_some("page")>"Tags & groups"</a>
                <a href="/channels" aria-current=(current == "channels").then_some("page")>"Channels"</a>
            </nav>
            <div class="who">
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        user.await.ok().flatten().map(|u| view! {
                            {(u.role == crate::model::Role::Admin).then(|| view! {
                                <a href="/staff" aria-current=(current == "staff").then_some("page")>"Staff"</a>
                                <a href="/settings" aria-current=(current == "settings").then_some("page")>"Settings"</a>
                            })}
                            {(u.role != crate::model::Role::Staff).then(|| view! {
                                <a href="/audit" aria-current=(current == "audit").then_some("page")>"Audit log"</a>
                            })}
                            <a href="/account" class="user" aria-current=(current == "account").then_some("page")>
                                {u.name} " · " <span class="role">{u.role.as_str()}</span>
                            </a>
                        })
                    })}
                </Suspense>
                <form method="post" action=Logout::url()>
                    <button type="submit" class="link">"Sign out"</button>
                </form>
            </div>
        </header>
    }
}
