//! The bar at the top of every signed-in page.

use leptos::prelude::*;

use crate::api::auth::{Logout, get_current_user};

#[component]
pub fn AppHeader() -> impl IntoView {
    let user = Resource::new(|| (), |_| get_current_user());
    let logout = ServerAction::<Logout>::new();
    view! {
        <header class="topbar">
            <a href="/" class="brand">"Herald"</a>
            <nav aria-label="Main">
                <a href="/" aria-current="page">"Broadcasts"</a>
            </nav>
            <div class="who">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        user.await.ok().flatten().map(|u| view! {
                            <span class="user">{u.name} " · " <span class="role">{u.role.as_str()}</span></span>
                        })
                    })}
                </Transition>
                <ActionForm action=logout>
                    <button type="submit" class="link">"Sign out"</button>
                </ActionForm>
            </div>
        </header>
    }
}
