//! Accounts: the staff page (admins invite, change roles, reset passwords, deactivate), the
//! account page (everyone's own password) and the page a password link opens. Plain forms:
//! they work without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::staff::{password_link_email, staff_page};
use crate::model::Role;
use crate::model::staff::{StaffPage, StaffRow, Standing};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

/// The notice and error a form post came back with.
fn outcome_banner() -> impl IntoView {
    let (notice, error) = use_query_map().with_untracked(|q| (q.get("notice"), q.get("error")));
    view! {
        {notice.map(|n| view! { <p class="success" role="status">{n}</p> })}
        {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
    }
}

#[component]
pub fn StaffPageView() -> impl IntoView {
    let (flash, confirm) = use_query_map().with_untracked(|q| {
        (
            q.get("flash"),
            q.get("confirm").and_then(|c| c.parse().ok()),
        )
    });
    let data = Resource::new(move || (), move |_| staff_page(flash.clone(), confirm));
    view! {
        <Title text="Staff · Herald"/>
        <AppHeader current="staff"/>
        <main class="narrow">
            <h1>"Staff"</h1>
            {outcome_banner()}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    page_or_error(data.await, |p| view! { <Staff page=p/> }.into_any())
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn Staff(page: StaffPage) -> impl IntoView {
    let me = page.me;
    view! {
        {page.flash.map(|(message, link)| view! {
            <div class="success" role="status">
                <p>{message}</p>
                <p><code class="link" data-testid="password-link">{link}</code></p>
            </div>
        })}
        {page.confirm.map(|r| view! { <Confirm row=r/> })}
        <table class="staff">
            <thead>
                <tr>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Email"</th>
                    <th scope="col">"Role"</th>
                    <th scope="col">"Standing"</th>
                    <th scope="col">"Since"</th>
                    <th scope="col">"Change"</th>
                </tr>
            </thead>
            <tbody>
                {page.rows.into_iter().map(|r| view! { <Row row=r me/> }).collect_view()}
            </tbody>
        </table>
        <Invite/>
        <Disk disk=page.disk/>
    }
}

#[component]
fn Row(row: StaffRow, me: i64) -> impl IntoView {
    let id = row.id.to_string();
    let role_label = format!("Role of {}", row.name);
    let active = row.standing != Standing::Deactivated;
    view! {
        <tr data-email=row.email.clone()>
            <td>{row.name.clone()}</td>
            <td>{row.email.clone()}</td>
            <td>
                <form method="post" action="/staff" class="inline">
                    <input type="hidden" name="action" value="role"/>
                    <input type="hidden" name="id" value=id.clone()/>
                    <RoleSelect selected=row.role label=role_label/>
                    <button type="submit">"Change role"</button>
                </form>
            </td>
            <td>{row.standing.label()}</td>
            <td>{row.created.clone()}</td>
            <td class="actions">
                {active.then(|| view! {
                    <form method="post" action="/staff" class="inline">
                        <input type="hidden" name="action" value="reset"/>
                        <input type="hidden" name="id" value=id.clone()/>
                        <button type="submit">{if row.standing == Standing::Invited { "New invitation link" } else { "Reset password" }}</button>
                    </form>
                })}
                {(active && row.id != me).then(|| view! {
                    <a href=format!("/staff?confirm={}", row.id) class="button danger">"Deactivate…"</a>
                })}
                {(!active).then(|| view! {
                    <form method="post" action="/staff" class="inline">
                        <input type="hidden" name="action" value="reactivate"/>
                        <input type="hidden" name="id" value=id.clone()/>
                        <button type="submit">"Reactivate"</button>
                    </form>
                })}
            </td>
        </tr>
    }
}

#[component]
fn RoleSelect(selected: Role, label: String) -> impl IntoView {
    view! {
        <select name="role" aria-label=label>
            {Role::ALL.into_iter().map(|r| view! {
                <option value=r.as_str() selected=r == selected>{r.as_str()}</option>
            }).collect_view()}
        </select>
    }
}

/// Deactivating asks first and says what it does.
#[component]
fn Confirm(row: StaffRow) -> impl IntoView {
    view! {
        <section class="confirm" role="alertdialog" aria-labelledby="confirm-title">
            <h2 id="confirm-title">{format!("Deactivate {}?", row.name)}</h2>
            <p>
                {format!("{} ({}) is signed out everywhere at once and cannot sign in any more. ", row.name, row.email)}
                "Their broadcasts and their entries in the audit log stay. You can reactivate the account later."
            </p>
            <form method="post" action="/staff" class="inline">
                <input type="hidden" name="action" value="deactivate"/>
                <input type="hidden" name="id" value=row.id.to_string()/>
                <input type="hidden" name="confirmed" value="yes"/>
                <button type="submit" class="danger">"Deactivate"</button>
            </form>
            <a href="/staff">"Cancel"</a>
        </section>
    }
}

#[component]
fn Invite() -> impl IntoView {
    view! {
        <form method="post" action="/staff" class="create">
            <h2>"Invite someone"</h2>
            <p class="muted">"They get a link to choose their own password; nobody else ever sees it."</p>
            <input type="hidden" name="action" value="invite"/>
            <label for="invite-name">"Name"</label>
            <input id="invite-name" name="name" required maxlength="100" autocomplete="off"/>
            <label for="invite-email">"Email"</label>
            <input id="invite-email" name="email" type="email" required maxlength="254" autocomplete="off"/>
            <label for="invite-role">"Role"</label>
            <select id="invite-role" name="role">
                {Role::ALL.into_iter().map(|r| view! {
                    <option value=r.as_str() selected=r == Role::Staff>{r.as_str()}</option>
                }).collect_view()}
            </select>
            <button type="submit" class="primary">"Invite"</button>
        </form>
    }
}

/// The fields of a new password, with the rule said up front.
fn new_password_fields() -> impl IntoView {
    view! {
        <p class="muted">"At least 12 characters, not a common or guessable one: a few unrelated words together make a strong password."</p>
        <label for="new">"New password"</label>
        <input id="new" name="new" type="password" autocomplete="new-password" required minlength="12" maxlength="1024"/>
        <label for="again">"New password again"</label>
        <input id="again" name="again" type="password" autocomplete="new-password" required minlength="12" maxlength="1024"/>
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    view! {
        <Title text="Your account · Herald"/>
        <AppHeader current="account"/>
        <main class="narrow">
            <h1>"Your account"</h1>
            {outcome_banner()}
            <form method="post" action="/account/password" class="stacked">
                <h2>"Change your password"</h2>
                <label for="current">"Current password"</label>
                <input id="current" name="current" type="password" autocomplete="current-password" required/>
                {new_password_fields()}
                <button type="submit" class="primary">"Change password"</button>
            </form>
        </main>
    }
}

/// What a password link (`/password#token=…`) opens, signed out. The token is in the
/// fragment, which reaches no server: a small script posts the link to `/password/link`, which
/// keeps the token in an HttpOnly cookie and comes back here; without JavaScript the person
/// pastes the link into the same form.
#[component]
pub fn PasswordPage() -> impl IntoView {
    let email = Resource::new(move || (), move |_| password_link_email());
    view! {
        <Title text="Choose a password · Herald"/>
        <main class="login">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match email.await {
                        Ok(Some(email)) => view! {
                            <form method="post" action="/password">
                                <h1>"Choose a password"</h1>
                                {outcome_banner()}
                                <p>"For " <strong>{email.clone()}</strong></p>
                                <input type="hidden" name="username" autocomplete="username" value=email/>
                                {new_password_fields()}
                                <button type="submit" class="primary">"Set password"</button>
                            </form>
                        }.into_any(),
                        Ok(None) => open_link_form().into_any(),
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}

/// The form that opens a password link: filled in and sent by the script when the page was
/// opened through the link, pasted by hand otherwise.
fn open_link_form() -> impl IntoView {
    const OPEN: &str = "(function(){var h=location.hash,q=location.search;\
if(h.indexOf('token=')<0&&q.indexOf('token=')<0)return;var f=document.getElementById('open-link');\
f.elements.link.value=location.href;history.replaceState(null,'',location.pathname);f.submit();})()";
    view! {
        <form method="post" action="/password/link" id="open-link">
            <h1>"Choose a password"</h1>
            {outcome_banner()}
            <p>"Open the link an admin sent you, or paste it here."</p>
            <label for="link">"Your link"</label>
            <input id="link" name="link" type="text" autocomplete="off" required/>
            <button type="submit" class="primary">"Continue"</button>
            <p><a href="/login">"Sign in"</a></p>
        </form>
        <script nonce=leptos::nonce::use_nonce() inner_html=OPEN></script>
    }
}

/// The space Herald takes, and what keeps it in check.
#[component]
fn Disk(disk: crate::model::staff::DiskUsage) -> impl IntoView {
    use crate::model::staff::human_bytes;
    let database = human_bytes(disk.database_bytes.max(0) as u64);
    view! {
        <section class="disk" aria-labelledby="disk-title">
            <h2 id="disk-title">"Storage"</h2>
            <dl>
                <dt>"Attachments"</dt>
                <dd data-testid="disk-attachments">{format!("{} in {} files", human_bytes(disk.attachment_bytes.max(0) as u64), disk.attachments)}</dd>
                <dt>"Imports waiting to start"</dt>
                <dd>{format!("{} in {} uploads", human_bytes(disk.import_bytes), disk.waiting_imports)}</dd>
                <dt>"Database"</dt>
                <dd>{database}</dd>
            </dl>
            <p class="muted small">"Attachments no broadcast uses and imports never started are removed after 24 hours."</p>
        </section>
    }
}
