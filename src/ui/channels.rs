//! The channels page (admins): connected channels with their settings (secrets masked), the
//! webhook URL to give each provider, enable/disable, rate, a test message, and a form to
//! connect another. Plain forms posting to `/channels`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::channels::load_channels;
use crate::model::channel::{ChannelKind, ChannelView, ChannelsPage};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

#[component]
pub fn ChannelsPageView() -> impl IntoView {
    let (notice, error) = use_query_map().with_untracked(|q| (q.get("notice"), q.get("error")));
    let data = Resource::new(|| (), |_| load_channels());
    view! {
        <Title text="Channels · Herald"/>
        <AppHeader current="channels"/>
        <main>
            <h1>"Channels"</h1>
            {notice.map(|n| view! { <p class="success" role="status">{n}</p> })}
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    page_or_error(data.await, |p| view! { <Channels page=p/> }.into_any())
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn Channels(page: ChannelsPage) -> impl IntoView {
    if !page.can_manage {
        return view! { <p class="muted">"Admins connect and manage channels."</p> }.into_any();
    }
    view! {
        <table class="channels-list">
            <caption class="visually-hidden">"Connected channels"</caption>
            <thead><tr>
                <th scope="col">"Name"</th><th scope="col">"Kind"</th><th scope="col">"State"</th>
                <th scope="col">"Rate"</th><th scope="col">"Settings"</th><th scope="col">"Webhook URL"</th>
            </tr></thead>
            <tbody>
                {page.channels.iter().map(|c| view! { <Row c=c.clone()/> }).collect_view()}
            </tbody>
        </table>
        <h2>"Change a channel"</h2>
        {page.channels.into_iter().map(|c| view! { <Manage c/> }).collect_view()}
        <Connect/>
    }
    .into_any()
}

#[component]
fn Row(c: ChannelView) -> impl IntoView {
    view! {
        <tr>
            <td>{c.name.clone()}</td>
            <td>{c.kind.label()}</td>
            <td>{if c.enabled { "Enabled" } else { "Disabled" }}</td>
            <td>{format!("{}/s", c.rate_per_sec)}</td>
            <td>
                <dl class="settings">
                    {c.settings.iter().map(|(key, label, shown, _)| view! {
                        <dt>{label.clone()}</dt><dd data-setting=key.clone()>{if shown.is_empty() { "—".to_string() } else { shown.clone() }}</dd>
                    }).collect_view()}
                </dl>
            </td>
            <td>
                {c.webhook_url.clone().map(|u| view! { <code>{u}</code> })}
                {c.connection.clone().map(|s| view! { <p class="small muted connection" data-testid="connection">{s}</p> })}
            </td>
        </tr>
    }
}

/// Change, enable/disable and test one channel.
#[component]
fn Manage(c: ChannelView) -> impl IntoView {
    let id = c.id.to_string();
    let p = |f: &str| format!("ch{}-{f}", c.id);
    view! {
        <details class="manage">
            <summary>{format!("{} ({})", c.name, c.kind.label())}</summary>
            <form method="post" action="/channels" class="stack">
                <input type="hidden" name="action" value="update"/>
                <input type="hidden" name="id" value=id.clone()/>
                <label for=p("name")>"Name"</label>
                <input id=p("name") name="name" value=c.name.clone() required maxlength="100"/>
                <label for=p("rate")>"Messages per second"</label>
                <input id=p("rate") name="rate" type="number" min="1" max="100000" value=c.rate_per_sec.to_string()/>
                {c.settings.iter().map(|(key, label, shown, secret)| {
                    let field = p(key);
                    view! {
                        <label for=field.clone()>{label.clone()}</label>
                        {if *secret {
                            view! {
                                <input id=field name=format!("cfg_{key}") type="password" autocomplete="off"
                                    placeholder=format!("unchanged ({shown})")/>
                            }.into_any()
                        } else {
                            view! { <input id=field name=format!("cfg_{key}") value=shown.clone()/> }.into_any()
                        }}
                    }
                }).collect_view()}
                <p class="muted small">"Secrets left empty stay as they are. Changing where the channel sends (its URL, host or port) needs every secret typed again."</p>
                <button type="submit" class="primary">"Save"</button>
            </form>
            <form method="post" action="/channels" class="inline">
                <input type="hidden" name="action" value="toggle"/>
                <input type="hidden" name="id" value=id.clone()/>
                <button type="submit" class="secondary">{if c.enabled { format!("Disable {}", c.name) } else { format!("Enable {}", c.name) }}</button>
            </form>
            {(c.kind == crate::model::channel::ChannelKind::Whatsapp).then(|| {
                let templates = c.templates.clone();
                view! {
                    <h3>"Message templates"</h3>
                    {if templates.is_empty() {
                        view! { <p class="muted small">"None read yet. WhatsApp takes only approved templates from customers who have not written in the last 24 hours."</p> }.into_any()
                    } else {
                        view! {
                            <table class="templates">
                                <thead><tr>
                                    <th scope="col">"Name"</th><th scope="col">"Language"</th><th scope="col">"Category"</th>
                                    <th scope="col">"Status"</th><th scope="col">"Quality"</th><th scope="col">"Parameters"</th>
                                </tr></thead>
                                <tbody>
                                    {templates.into_iter().map(|t| view! {
                                        <tr data-template=t.name.clone()>
                                            <td>{t.name.clone()}</td>
                                            <td>{t.language.clone()}</td>
                                            <td>{t.category.to_lowercase()}</td>
                                            <td>{t.status.to_lowercase()}</td>
                                            <td>{t.quality.to_lowercase()}</td>
                                            <td>{t.body_parameters().join(", ")}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }}
                    <form method="post" action="/channels" class="inline">
                        <input type="hidden" name="action" value="sync"/>
                        <input type="hidden" name="id" value=id.clone()/>
                        <button type="submit" class="secondary">"Read templates from WhatsApp"</button>
                    </form>
                }
            })}
            <form method="post" action="/channels" class="stack">
                <input type="hidden" name="action" value="test"/>
                <input type="hidden" name="id" value=id/>
                <label for=p("test")>"Send a test message to (exact customer name, phone or email)"</label>
                <input id=p("test") name="test_to" autocomplete="off"/>
                <button type="submit" class="secondary">"Send test message"</button>
            </form>
        </details>
    }
}

/// Connect a new channel: kind, name, rate, and the kind's settings.
#[component]
fn Connect() -> impl IntoView {
    view! {
        <h2>"Connect a channel"</h2>
        <form method="post" action="/channels" class="stack connect">
            <input type="hidden" name="action" value="create"/>
            <label for="new-kind">"Kind"</label>
            <select id="new-kind" name="kind" required>
                {ChannelKind::ALL.iter().map(|k| view! {
                    <option value=k.as_str()>{format!("{} — {}/s by default", k.label(), k.default_rate())}</option>
                }).collect_view()}
            </select>
            <label for="new-name">"Name"</label>
            <input id="new-name" name="name" required maxlength="100"/>
            <label for="new-rate">"Messages per second (empty: the provider's published limit)"</label>
            <input id="new-rate" name="rate" type="number" min="1" max="100000"/>
            <p class="muted">"Fill in the settings of the kind you chose; the others are ignored. Secrets are stored on the server and never shown again."</p>
            {ChannelKind::ALL.iter().filter(|k| !k.fields().is_empty()).map(|k| view! {
                <fieldset>
                    <legend>{k.label()}</legend>
                    {k.fields().iter().map(|f| {
                        let id = format!("new-{}-{}", k.as_str(), f.key);
                        view! {
                            <label for=id.clone()>{f.label}</label>
                            <input id=id name=format!("cfg_{}_{}", k.as_str(), f.key)
                                type=if f.secret { "password" } else { "text" }
                                autocomplete="off" placeholder=f.default/>
                        }
                    }).collect_view()}
                </fieldset>
            }).collect_view()}
            <button type="submit" class="primary">"Connect"</button>
        </form>
    }
}
