//! The HTML shell and the routes.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::ui::audit::AuditPageView;
use crate::ui::broadcast_list::BroadcastListPage;
use crate::ui::channels::ChannelsPageView;
use crate::ui::chat::ChatPage;
use crate::ui::customer_edit::CustomerEditPage;
use crate::ui::customers::CustomersPage;
use crate::ui::dashboard::DashboardPage;
use crate::ui::import::ImportPageView;
use crate::ui::labels::LabelsPageView;
use crate::ui::login::LoginPage;
use crate::ui::results::ResultsPage;
use crate::ui::settings::SettingsPageView;
use crate::ui::staff::{AccountPage, PasswordPage, StaffPageView};
use crate::ui::wizard::WizardView;

/// The document around every page (rendered on the server only). Its inline scripts
/// (hydration, resources, the sign-in page's time zone) carry the request's nonce, which the
/// response's Content-Security-Policy names (`server::http::middleware::security_headers`).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/herald.css"/>
        <Title text="Herald"/>
        <Router>
            <Routes fallback=NotFound>
                // Async: the server sends the finished page, so it works without JavaScript.
                <Route path=path!("/") view=BroadcastListPage ssr=SsrMode::Async/>
                <Route path=path!("/broadcasts/new") view=WizardView ssr=SsrMode::Async/>
                <Route path=path!("/broadcasts/:id/edit") view=WizardView ssr=SsrMode::Async/>
                <Route path=path!("/broadcasts/:id") view=ResultsPage ssr=SsrMode::Async/>
                <Route path=path!("/customers") view=CustomersPage ssr=SsrMode::Async/>
                <Route path=path!("/dashboard") view=DashboardPage ssr=SsrMode::Async/>
                <Route path=path!("/customers/import") view=ImportPageView ssr=SsrMode::Async/>
                <Route path=path!("/customers/import/:id") view=ImportPageView ssr=SsrMode::Async/>
                <Route path=path!("/customers/:id") view=CustomerEditPage ssr=SsrMode::Async/>
                <Route path=path!("/customers/:id/chat") view=ChatPage ssr=SsrMode::Async/>
                <Route path=path!("/labels") view=LabelsPageView ssr=SsrMode::Async/>
                <Route path=path!("/channels") view=ChannelsPageView ssr=SsrMode::Async/>
                <Route path=path!("/staff") view=StaffPageView ssr=SsrMode::Async/>
                <Route path=path!("/settings") view=SettingsPageView ssr=SsrMode::Async/>
                <Route path=path!("/audit") view=AuditPageView ssr=SsrMode::Async/>
                <Route path=path!("/account") view=AccountPage/>
                <Route path=path!("/password") view=PasswordPage ssr=SsrMode::Async/>
                <Route path=path!("/login") view=LoginPage/>
            </Routes>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found · Herald"/>
        <main class="narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <a href="/">"Back to the broadcasts"</a></p>
        </main>
    }
}
