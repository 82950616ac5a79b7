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
    let (notice, error) = use_query_map().with_untracked(|q| (q.get("notice"), q.get("error")));
    let data = Resource::new(|| (), |_| list_labels());
    view! {
        <Title text="Tags and robot groups · Herald"/>
        <AppHeader current="labels"/>
        <main class="narrow">
            <h1>"Tags and robot groups"</h1>
            {notice.map(|n| view! { <p class="success" role="status">{n}</p> })}
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    page_or_error(data.await, |p| view! { <Sections page=p/> }.into_any())
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn Sections(page: LabelsPage) -> impl IntoView {
    let can_edit = page.can_edit;
    view! {
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
                                        <form method="post" action="/labels">
                                            <input type="hidden" name="kind" value=kind/>
                                            <input type="hidden" name="id" value=r.id.to_string()/>
                                            <button type="submit" name="action" value="delete" aria-label=delete_label>"Delete"</button>
                                        </form>
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
