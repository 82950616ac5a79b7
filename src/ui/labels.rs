//! The tags and robot groups page: counts, create, rename, delete (plain forms to `/labels`).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::labels::list_labels;
use crate::model::labels::{LabelRow, LabelsPage};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

#[component]
pub fn LabelsPageView() -> impl IntoView {
    let (notice, error, confirm) =
        use_query_map().with_untracked(|q| (q.get("notice"), q.get("error"), q.get("confirm")));
    let data = Resource::new(|| (), |_| list_labels());
    view! {
        <Title text="Tags and robot groups · Herald"/>
        <AppHeader current="labels"/>
        <main class="narrow">
            <h1>"Tags and robot groups"</h1>
            {notice.map(|n| view! { <p class="success" role="status">{n}</p> })}
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let confirm = confirm.clone();
                    Suspend::new(async move {
                        page_or_error(data.await, |p| view! { <Sections page=p confirm/> }.into_any())
                    })
                }}
            </Suspense>
        </main>
    }
}

#[component]
fn Sections(page: LabelsPage, confirm: Option<String>) -> impl IntoView {
    let can_edit = page.can_edit;
    // `?confirm=tag-12`: the tag or group a delete asks about.
    let asked = confirm.filter(|_| can_edit).and_then(|c| {
        let (kind, id) = c.split_once('-')?;
        let id: i64 = id.parse().ok()?;
        let rows = match kind {
            "tag" => &page.tags,
            "group" => &page.groups,
            _ => return None,
        };
        let kind: &'static str = if kind == "tag" { "tag" } else { "group" };
        rows.iter().find(|r| r.id == id).cloned().map(|r| (kind, r))
    });
    view! {
        {asked.map(|(kind, row)| view! { <ConfirmDelete kind row/> })}
        {(!can_edit).then(|| view! { <p class="muted">"Managers can look but not change tags or groups."</p> })}
        <Section title="Tags" kind="tag" rows=page.tags can_edit/>
        <Section title="Robot groups" kind="group" rows=page.groups can_edit/>
    }
}

#[component]
fn Section(
    title: &'static str,
    kind: &'static str,
    rows: Vec<LabelRow>,
    can_edit: bool,
) -> impl IntoView {
    let new_id = format!("new-{kind}");
    view! {
        <section class="labels">
            <h2>{title}</h2>
            <table class="labels">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Customers"</th>
                        {can_edit.then(|| view! { <th scope="col">"Change"</th> })}
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|r| {
                        let rename_label = format!("New name for {}", r.name);
                        let delete_label = format!("Delete {}", r.name);
                        let href = if kind == "tag" {
                            format!("/customers?tag={}", crate::model::list_query::encode_component(&r.name))
                        } else {
                            "/customers".to_string()
                        };
                        view! {
                            <tr data-name=r.name.clone()>
                                <td><a href=href>{r.name.clone()}</a></td>
                                <td>{r.customers}</td>
                                {can_edit.then(|| view! {
                                    <td class="label-actions">
                                        <form method="post" action="/labels">
                                            <input type="hidden" name="kind" value=kind/>
                                            <input type="hidden" name="id" value=r.id.to_string()/>
                                            <input name="name" value=r.name.clone() aria-label=rename_label required maxlength="100"/>
                                            <button type="submit" name="action" value="rename">"Rename"</button>
                                        </form>
                                        <a class="button danger" href=format!("/labels?confirm={kind}-{}", r.id) aria-label=delete_label>"Delete…"</a>
                                    </td>
                                })}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            {can_edit.then(|| view! {
                <form method="post" action="/labels" class="create">
                    <input type="hidden" name="kind" value=kind/>
                    <label for=new_id.clone()>{format!("New {}", if kind == "tag" { "tag" } else { "robot group" })}</label>
                    <input id=new_id name="name" required maxlength="100"/>
                    <button type="submit" name="action" value="create">"Create"</button>
                </form>
            })}
        </section>
    }
}

/// Deleting a tag or group asks first and says how many customers lose it.
#[component]
fn ConfirmDelete(kind: &'static str, row: LabelRow) -> impl IntoView {
    let noun = if kind == "tag" { "tag" } else { "robot group" };
    let who = match row.customers {
        0 => "No customer carries it.".to_string(),
        1 => "1 customer carries it and will lose it.".to_string(),
        n => format!("{n} customers carry it and will lose it."),
    };
    view! {
        <section class="confirm" role="alertdialog" aria-labelledby="confirm-title" aria-describedby="confirm-what">
            <h2 id="confirm-title">{format!("Delete the {noun} “{}”?", row.name)}</h2>
            <p id="confirm-what">
                {who}
                " The customers themselves, their other tags and their history stay. A broadcast that has not finished and uses it in its audience keeps it from being deleted."
            </p>
            <form method="post" action="/labels" class="inline">
                <input type="hidden" name="kind" value=kind/>
                <input type="hidden" name="id" value=row.id.to_string()/>
                <input type="hidden" name="confirmed" value="yes"/>
                <button type="submit" name="action" value="delete" class="danger">{format!("Delete the {noun}")}</button>
            </form>
            " "
            <a href="/labels">"Keep it"</a>
        </section>
    }
}
