//! The sign-in page. Works as a plain form without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::auth::Login;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let login = ServerAction::<Login>::new();
    // Without JavaScript a failed sign-in comes back with ?error=…&email=…; with it, the
    // action's value carries the error and the form keeps what was typed.
    let error = move || match login.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => query.read().get("error"),
    };
    let email = move || query.read().get("email").unwrap_or_default();
    let next = move || query.read().get("next").unwrap_or_default();
    view! {
        <Title text="Sign in · Herald"/>
        <main class="login">
            <ActionForm action=login>
                <h1>"Herald"</h1>
                <p class="muted">"Broadcast messages to your customers."</p>
                {move || {
                    error().map(|e| view! { <p class="error" role="alert" id="login-error">{e}</p> })
                }}
                <label for="email">"Email"</label>
                <input id="email" name="email" type="email" autocomplete="username" required value=email/>
                <label for="password">"Password"</label>
                <input
                    id="password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    required
                />
                <input type="hidden" name="tz" id="tz" value=""/>
                <input type="hidden" name="next" value=next/>
                <button type="submit" class="primary">"Sign in"</button>
            </ActionForm>
            // Sends the browser's time zone, so dates show in local time.
            <script inner_html="document.getElementById('tz').value=Intl.DateTimeFormat().resolvedOptions().timeZone||''"></script>
        </main>
    }
}
