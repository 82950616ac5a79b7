//! The broadcast wizard: 1 content and time, 2 audience, 3 channels. Each step is a plain form
//! posting to `/broadcasts/wizard`, which keeps what was typed in the draft and moves on, so it
//! works without JavaScript and leaving midway loses nothing.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::compose::load_wizard;
use crate::model::audience::{Field, Match, Op};
use crate::model::compose::{MAX_BODY_CHARS, MAX_NAME_CHARS, WizardPage};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

#[component]
pub fn WizardView() -> impl IntoView {
    let id = use_params_map().with_untracked(|p| p.get("id").and_then(|i| i.parse::<i64>().ok()));
    let (step, error, body) = use_query_map().with_untracked(|q| {
        (
            q.get("step").and_then(|s| s.parse::<u8>().ok()),
            q.get("error"),
            q.get("body"),
        )
    });
    let data = Resource::new(move || (id, step), |(id, step)| load_wizard(id, step));
    view! {
        <Title text="Broadcast · Herald"/>
        <AppHeader current="broadcasts"/>
        <main class="narrow">
            <p class="crumbs"><a href="/">"Broadcasts"</a></p>
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let body = body.clone();
                    Suspend::new(async move {
                        page_or_error(data.await, |mut p| {
                            if let Some(b) = body {
                                p.compose.body = b;
                            }
                            view! { <Wizard page=p/> }.into_any()
                        })
                    })
                }}
            </Suspense>
        </main>
    }
}

#[component]
fn Wizard(page: WizardPage) -> impl IntoView {
    let title = if page.id.is_some() {
        format!("Edit “{}”", page.compose.name)
    } else {
        "New broadcast".to_string()
    };
    let copy_form = page.id.filter(|_| page.can_edit).map(|id| {
        view! {
            <form method="post" action=format!("/broadcasts/{id}/copy") class="copy">
                <button type="submit" class="secondary">"Copy into a new draft"</button>
            </form>
        }
    });
    if let Some(reason) = page.locked.clone() {
        return view! {
            <h1>{title}</h1>
            <p class="notice" role="status">{reason}</p>
            {copy_form}
        }
        .into_any();
    }
    if !page.can_edit {
        return view! {
            <h1>{title}</h1>
            <p class="muted">"Managers read broadcasts and their results; staff and admins write them."</p>
        }
        .into_any();
    }
    let step = page.step;
    let steps = ["Content", "Audience", "Channels"];
    view! {
        <h1>{title}</h1>
        <ol class="steps" aria-label="Steps">
            {steps.iter().enumerate().map(|(i, s)| {
                let current = (i as u8 + 1 == step).then_some("step");
                view! { <li aria-current=current>{format!("{}. {s}", i + 1)}</li> }
            }).collect_view()}
        </ol>
        <form method="post" action="/broadcasts/wizard" class="wizard"
            enctype=(step == 1).then_some("multipart/form-data")>
            <input type="hidden" name="step" value=step.to_string()/>
            <input type="hidden" name="key" value=page.key.clone()/>
            {page.id.map(|id| view! { <input type="hidden" name="id" value=id.to_string()/> })}
            {match step {
                1 => view! { <ContentStep page=page.clone()/> }.into_any(),
                2 => view! { <AudienceStep page=page.clone()/> }.into_any(),
                _ => view! { <ChannelStep page=page.clone()/> }.into_any(),
            }}
            <div class="actions">
                {(step > 1).then(|| view! { <button type="submit" name="go" value="back" class="secondary">"Back"</button> })}
                {(step < 3).then(|| view! { <button type="submit" name="go" value="next" class="primary">"Next"</button> })}
                {(step == 3).then(|| view! {
                    <button type="submit" name="go" value="schedule" class="primary">"Update"</button>
                    <button type="submit" name="go" value="now" class="secondary">"Send now"</button>
                })}
                <button type="submit" name="go" value="draft" class="link">"Save draft and leave"</button>
            </div>
        </form>
        {copy_form}
    }
    .into_any()
}

#[component]
fn ContentStep(page: WizardPage) -> impl IntoView {
    let c = page.compose;
    view! {
        <label for="name">"Name (only staff see it)"</label>
        <input id="name" name="name" value=c.name required maxlength=MAX_NAME_CHARS.to_string()/>
        <label for="body">"Message"</label>
        <textarea id="body" name="body" rows="6" maxlength=MAX_BODY_CHARS.to_string()>{c.body}</textarea>
        <p class="muted">"Personalise with {{first_name}} or {{name}}."</p>
        <fieldset class="attachments">
            <legend>"Attachments"</legend>
            {(!c.attachments.is_empty()).then(|| view! {
                <ul class="attachments">
                    {c.attachments.into_iter().map(|a| {
                        let url = format!("/attachments/{}", a.id);
                        let label = format!("Remove {}", a.name);
                        view! {
                            <li>
                                {a.is_image().then(|| view! { <img src=url.clone() alt="" width="64" height="64" loading="lazy"/> })}
                                <a href=url>{a.name.clone()}</a>
                                <span class="muted">{format!(" {:.0} KB", a.size as f64 / 1024.0)}</span>
                                <button type="submit" name="go" value=format!("detach_{}", a.id) class="link" aria-label=label>"Remove"</button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            })}
            <label for="file">"Add a file (mp3, png, jpg, gif, mp4, m4a, webm, pdf, vcf, ogg, 3gpp, wav, mov, aac)"</label>
            <input id="file" type="file" name="file"
                accept=".mp3,.png,.jpg,.jpeg,.gif,.mp4,.m4a,.webm,.pdf,.vcf,.ogg,.3gp,.3gpp,.wav,.mov,.aac"/>
            <button type="submit" name="go" value="attach" class="secondary">"Attach"</button>
        </fieldset>
        <label for="send_at">{format!("Send at ({})", page.time_zone)}</label>
        <input id="send_at" name="send_at" type="datetime-local" value=page.send_at_local/>
        <p class="muted">"Leave empty to decide later, or use “Send now” on the last step."</p>
    }
}

#[component]
fn AudienceStep(page: WizardPage) -> impl IntoView {
    let rule = page.compose.audience.clone();
    let any = rule.matching == Match::Any;
    let tags = page.tags.clone();
    let groups = page.groups.clone();
    // The stored conditions plus one empty row to add another.
    let rows: Vec<Option<crate::model::audience::Condition>> = rule
        .conditions
        .iter()
        .copied()
        .map(Some)
        .chain(std::iter::once(None))
        .collect();
    view! {
        <fieldset>
            <legend>"Who receives it"</legend>
            <label for="match">"Customers matching"</label>
            <select id="match" name="match">
                <option value="all" selected=!any>"All conditions"</option>
                <option value="any" selected=any>"Any condition"</option>
            </select>
            <table class="conditions">
                <thead><tr><th scope="col">"What"</th><th scope="col">"Is"</th><th scope="col">"Which"</th><th scope="col"><span class="visually-hidden">"Remove"</span></th></tr></thead>
                <tbody>
                    {rows.into_iter().enumerate().map(|(n, c)| {
                        let field = c.map(|c| c.field);
                        let op = c.map(|c| c.op);
                        let chosen = c.map(|c| c.id);
                        let tags = tags.clone();
                        let groups = groups.clone();
                        view! {
                            <tr>
                                <td>
                                    <select name=format!("cond_{n}_field") aria-label=format!("Condition {} kind", n + 1)>
                                        <option value="tag" selected=field != Some(Field::RobotGroup)>"Tag"</option>
                                        <option value="robot_group" selected=field == Some(Field::RobotGroup)>"Robot group"</option>
                                    </select>
                                </td>
                                <td>
                                    <select name=format!("cond_{n}_op") aria-label=format!("Condition {} test", n + 1)>
                                        <option value="is" selected=op != Some(Op::IsNot)>"is"</option>
                                        <option value="is_not" selected=op == Some(Op::IsNot)>"is not"</option>
                                    </select>
                                </td>
                                <td>
                                    <select name=format!("cond_{n}_id") aria-label=format!("Condition {} value", n + 1)>
                                        <option value="" selected=chosen.is_none()>"(choose)"</option>
                                        <optgroup label="Tags">
                                            {tags.into_iter().map(|(id, name)| view! {
                                                <option value=id.to_string() selected=chosen == Some(id) && field == Some(Field::Tag)>{name}</option>
                                            }).collect_view()}
                                        </optgroup>
                                        <optgroup label="Robot groups">
                                            {groups.into_iter().map(|(id, name)| view! {
                                                <option value=id.to_string() selected=chosen == Some(id) && field == Some(Field::RobotGroup)>{name}</option>
                                            }).collect_view()}
                                        </optgroup>
                                    </select>
                                </td>
                                <td>{c.is_some().then(|| view! {
                                    <button type="submit" name="go" value=format!("remove_{n}") class="link" aria-label=format!("Remove condition {}", n + 1)>"Remove"</button>
                                })}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <button type="submit" name="go" value="stay" class="secondary">"Apply and count"</button>
        </fieldset>
        <p class="audience-count" role="status">
            {format!("{} customer{} match", page.matching, if page.matching == 1 { "" } else { "s" })}
            " (opted-out customers are never included)"
        </p>
        {(!page.sample.is_empty()).then(|| view! {
            <p class="muted">{format!("For example: {}", page.sample.join(", "))}</p>
        })}
    }
}

#[component]
fn ChannelStep(page: WizardPage) -> impl IntoView {
    let reachable: i64 = page.channels.iter().map(|c| c.reached).sum();
    view! {
        <input type="hidden" name="channels_shown" value="1"/>
        <fieldset>
            <legend>"Channels, in the order to try them"</legend>
            <p class="muted">"Each customer gets the message once, on the first picked channel where they have an address."</p>
            <table class="channels">
                <thead><tr><th scope="col">"Use"</th><th scope="col">"Channel"</th><th scope="col">"Order"</th><th scope="col">"Reaches"</th></tr></thead>
                <tbody>
                    {page.channels.into_iter().map(|c| {
                        let check_id = format!("channel-{}", c.id);
                        view! {
                            <tr>
                                <td><input type="checkbox" id=check_id.clone() name="channel" value=c.id.to_string() checked=c.priority.is_some()/></td>
                                <td><label for=check_id>{format!("{} ({})", c.name, c.kind)}</label></td>
                                <td><input type="number" min="1" max="20" name=format!("prio_{}", c.id) value=c.priority.map(|p| p.to_string()).unwrap_or_default() aria-label=format!("Order of {}", c.name) class="prio"/></td>
                                <td>{c.priority.map(|_| c.reached.to_string()).unwrap_or_default()}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <button type="submit" name="go" value="stay" class="secondary">"Apply and count"</button>
        </fieldset>
        <p class="preflight" role="status">
            {format!("{reachable} of {} matching customers can be reached; {} cannot (no address on the picked channels, or opted out there).", page.matching, page.unreachable)}
        </p>
    }
}
