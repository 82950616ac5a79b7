//! The sign-in page: a plain form posting to the `login` server function.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::auth::Login;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    // A failed sign-in comes back as ?error=…&email=…&next=… (never the password).
    let (notice, error, email, next) = query.with_untracked(|q| {
        (
            q.get("notice"),
            q.get("error"),
            q.get("email").unwrap_or_default(),
            q.get("next").unwrap_or_default(),
        )
    });
    view! {
        <Title text="Sign in · Herald"/>
        <main class="login">
            <form method="post" action=Login::url()>
                <h1>"Herald"</h1>
                <p class="muted">"Broadcast messages to your customers."</p>
                {notice.map(|n| view! { <p class="success" role="status">{n}</p> })}
                {error.map(|e| view! { <p class="error" role="alert" id="login-error">{e}</p> })}
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
            </form>
            // Sends the browser's time zone, so dates show in local time.
            <script nonce=leptos::nonce::use_nonce() inner_html="document.getElementById('tz').value=Intl.DateTimeFormat().resolvedOptions().timeZone||''"></script>
        </main>
    }
}
