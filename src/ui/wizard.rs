//! The broadcast wizard: 1 content and time, 2 audience, 3 channels. Each step is a plain form
//! posting to `/broadcasts/wizard`, which keeps what was typed in the draft and moves on, so it
//! works without JavaScript and leaving midway loses nothing.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::broadcasts::{CancelBroadcast, SetPaused};
use crate::api::compose::load_wizard;
use crate::model::ab::{MAX_SHARE, MAX_VARIANTS, MAX_WAIT_HOURS, MIN_SHARE, Measure, letter};
use crate::model::compose::{
    MAX_EXPIRE_HOURS, MAX_FALLBACK_HOURS, MAX_NAME_CHARS, MAX_REASON_CHARS, WizardPage,
};
use crate::model::consent::Purpose;
use crate::ui::broadcast_list::Approval;
use crate::ui::compose_islands::{AttachmentPicker, AudienceEditor, MessageEditor};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

#[component]
pub fn WizardView() -> impl IntoView {
    let id = use_params_map().with_untracked(|p| p.get("id").and_then(|i| i.parse::<i64>().ok()));
    let (step, variant) = use_query_map().with_untracked(|q| {
        (
            q.get("step").and_then(|s| s.parse::<u8>().ok()),
            q.get("variant").and_then(|s| s.parse::<usize>().ok()),
        )
    });
    let (error, body, notice, test_to, confirm) = use_query_map().with_untracked(|q| {
        (
            q.get("error"),
            q.get("body"),
            q.get("notice"),
            q.get("test_to").unwrap_or_default(),
            q.get("confirm").as_deref() == Some("cancel"),
        )
    });
    let data = Resource::new(
        move || (id, step, variant),
        |(id, step, variant)| load_wizard(id, step, variant),
    );
    view! {
        <Title text="Broadcast · Herald"/>
        <AppHeader current="broadcasts"/>
        <main class="narrow">
            <p class="crumbs"><a href="/">"Broadcasts"</a></p>
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {notice.map(|n| view! { <p class="notice" role="status">{n}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let body = body.clone();
                    let test_to = test_to.clone();
                    Suspend::new(async move {
                        page_or_error(data.await, |mut p| {
                            if let Some(b) = body {
                                p.compose.body = b;
                            }
                            view! { <Wizard page=p test_to=test_to confirm/> }.into_any()
                        })
                    })
                }}
            </Suspense>
        </main>
    }
}

/// Pause or resume (admins) and cancel, for a broadcast that is scheduled or sending.
/// Cancelling asks first (`?confirm=cancel`), saying what it will do; the server refuses a
/// cancel that was not confirmed.
#[component]
fn StopForms(page: WizardPage, confirm: bool) -> impl IntoView {
    let Some(id) = page.id else {
        return ().into_any();
    };
    let pause = page.can_pause.then(|| {
        let (label, to) = if page.paused {
            ("Resume", "false")
        } else {
            ("Pause", "true")
        };
        view! {
            <form method="post" action=SetPaused::url()>
                <input type="hidden" name="id" value=id.to_string()/>
                <input type="hidden" name="paused" value=to/>
                <button type="submit" class="secondary">{label}</button>
            </form>
        }
    });
    if confirm {
        let what = if page.sent == 0 && page.unsent == 0 {
            "Nothing has been sent yet, and nothing will be.".to_string()
        } else {
            format!(
                "{} messages not yet sent will never be sent. The {} already sent stay in the results.",
                page.unsent, page.sent
            )
        };
        return view! {
            <section class="confirm" role="alertdialog" aria-labelledby="confirm-cancel" aria-describedby="confirm-cancel-what">
                <h2 id="confirm-cancel">{format!("Cancel “{}”?", page.compose.name)}</h2>
                <p id="confirm-cancel-what">{what} " This cannot be undone; you can copy it into a new draft later."</p>
                <form method="post" action=CancelBroadcast::url() class="inline">
                    <input type="hidden" name="id" value=id.to_string()/>
                    <input type="hidden" name="confirmed" value="yes"/>
                    <button type="submit" class="danger">"Yes, cancel the broadcast"</button>
                </form>
                " "
                <a href=format!("/broadcasts/{id}/edit")>"Keep it"</a>
            </section>
        }
        .into_any();
    }
    view! {
        <div class="stop-actions">
            {pause}
            <a class="button danger" href=format!("/broadcasts/{id}/edit?confirm=cancel")>"Cancel broadcast"</a>
        </div>
    }
    .into_any()
}

#[component]
fn Wizard(page: WizardPage, test_to: String, confirm: bool) -> impl IntoView {
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
    let stop_forms = (page.id.is_some() && page.stoppable && page.can_edit)
        .then(|| view! { <StopForms page=page.clone() confirm/> });
    if let Some(reason) = page.locked.clone() {
        return view! {
            <h1>{title}</h1>
            <p class="notice" role="status">{reason}</p>
            {page.paused.then(|| view! { <p class="muted">"It is paused: nothing more is sent until it is resumed."</p> })}
            {stop_forms}
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
    let approval = page
        .id
        .zip(page.approval.clone())
        .map(|(id, (state, note))| {
            let name = page.compose.name.clone();
            view! { <Approval id name state note can_decide=page.can_pause from="page"/> }
        });
    view! {
        <h1>{title}</h1>
        {approval}
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
            <input type="hidden" name="variant" value=page.variant.to_string()/>
            {page.id.map(|id| view! { <input type="hidden" name="id" value=id.to_string()/> })}
            {match step {
                1 => view! { <ContentStep page=page.clone()/> }.into_any(),
                2 => view! { <AudienceStep page=page.clone()/> }.into_any(),
                _ => view! { <ChannelStep page=page.clone() test_to=test_to.clone()/> }.into_any(),
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
        {stop_forms}
        {copy_form}
    }
    .into_any()
}

#[component]
fn ContentStep(page: WizardPage) -> impl IntoView {
    let timing = page.clone();
    let ab = page.clone();
    let c = page.compose;
    // A variant's tab edits its message only: the name and the time are the broadcast's.
    let own = page.variant == 0;
    view! {
        {own.then(|| view! {
            <label for="name">"Name (only staff see it)"</label>
            <input id="name" name="name" value=c.name.clone() required maxlength=MAX_NAME_CHARS.to_string()/>
        })}
        {(!own).then(|| view! {
            <p class="notice" data-testid="variant-editing">{format!("Variant {}: its own text and files. The name, time and audience are the broadcast's.", letter(page.variant))}</p>
        })}
        <MessageEditor body=c.body sample_name=page.sample_name/>
        <AttachmentPicker attachments=c.attachments/>
        {own.then(|| view! { <TimingFields page=timing/> })}
        <AbFields page=ab/>
    }
}

/// The variants' buttons: each saves the step and shows that variant.
#[component]
fn VariantTabs(page: WizardPage, what: &'static str) -> impl IntoView {
    let count = page.compose.ab.as_ref().map_or(1, |a| a.count());
    view! {
        <div class="variant-tabs" role="group" aria-label=format!("Variant whose {what} is shown")>
            {(0..count).map(|i| {
                let current = i == page.variant;
                view! {
                    <button type="submit" name="go" value=format!("variant_{i}")
                        class=if current { "primary" } else { "secondary" }
                        aria-pressed=if current { "true" } else { "false" }>
                        {format!("Variant {}", letter(i))}
                    </button>
                }
            }).collect_view()}
        </div>
    }
}

/// Step 1's A/B test: the variants (each edited on its own tab), how the audience is split
/// between them, and how the winner is chosen.
#[component]
fn AbFields(page: WizardPage) -> impl IntoView {
    let Some(plan) = page.compose.ab.clone() else {
        return view! {
            <fieldset class="ab-test">
                <legend>"A/B test"</legend>
                <p class="muted">"Send two or more versions of the message and learn which works better."</p>
                <button type="submit" name="go" value="add_variant" class="secondary">"Add variant B"</button>
            </fieldset>
        }
        .into_any();
    };
    let count = plan.count();
    let test = plan.test_share.is_some();
    view! {
        <fieldset class="ab-test">
            <legend>"A/B test"</legend>
            <input type="hidden" name="ab_shown" value="1"/>
            <VariantTabs page=page.clone() what="text and files"/>
            <div class="actions">
                {(count < MAX_VARIANTS).then(|| view! {
                    <button type="submit" name="go" value="add_variant" class="secondary">{format!("Add variant {}", letter(count))}</button>
                })}
                {(page.variant > 0).then(|| view! {
                    <button type="submit" name="go" value="remove_variant" class="link">{format!("Remove variant {}", letter(page.variant))}</button>
                })}
            </div>
            <div class="choice">
                <input type="radio" id="ab-even" name="ab_split" value="even" checked=!test/>
                <label for="ab-even">"Split the whole audience evenly between the variants"</label>
            </div>
            <div class="choice">
                <input type="radio" id="ab-test" name="ab_split" value="test" checked=test/>
                <label for="ab-test">"Test on a share of the audience, then send the winner to the rest"</label>
            </div>
            <label for="ab_share">"Share of the audience in the test (%)"</label>
            <input id="ab_share" name="ab_share" type="number" min=MIN_SHARE.to_string() max=MAX_SHARE.to_string()
                value=plan.test_share.unwrap_or(20).to_string()/>
            <label for="ab_measure">"The winner is the variant with the highest"</label>
            <select id="ab_measure" name="ab_measure">
                {Measure::ALL.into_iter().map(|m| view! {
                    <option value=m.as_str() selected=m == plan.measure>{m.label()}</option>
                }).collect_view()}
            </select>
            <label for="ab_wait">"Choose the winner this many hours after the start"</label>
            <input id="ab_wait" name="ab_wait" type="number" min="1" max=MAX_WAIT_HOURS.to_string()
                value=plan.wait_hours.to_string()/>
            <p class="muted">"Each customer gets one variant, chosen at random but the same every time for this broadcast. The results compare the variants side by side and say whether the difference is more than chance."</p>
        </fieldset>
    }
    .into_any()
}

/// Step 1's time: one moment in the person's zone, or a wall-clock time in each customer's
/// own; the expiry; quiet hours, which admins may lift for one broadcast (with a reason).
#[component]
fn TimingFields(page: WizardPage) -> impl IntoView {
    let timing = page.compose.timing.clone();
    let local = timing.local_at.is_some();
    let quiet = page.quiet_hours.clone();
    view! {
        <input type="hidden" name="timing_shown" value="1"/>
        <label for="send_at">{format!("Send at ({})", page.time_zone)}</label>
        <input id="send_at" name="send_at" type="datetime-local" value=page.send_at_local/>
        <fieldset class="send-mode">
            <legend>"Whose clock"</legend>
            <div class="choice">
                <input type="radio" id="mode-moment" name="send_mode" value="moment" checked=!local/>
                <label for="mode-moment">{format!("One moment for everyone, in {}", page.time_zone)}</label>
            </div>
            <div class="choice">
                <input type="radio" id="mode-local" name="send_mode" value="local" checked=local/>
                <label for="mode-local">{format!("This time in each customer's own time zone (customers without one: {})", page.workspace_zone)}</label>
            </div>
        </fieldset>
        <p class="muted">"Leave empty to decide later, or use “Send now” on the last step."</p>
        <label for="expire_hours">"Don't deliver after (hours from the start; empty for no limit)"</label>
        <input id="expire_hours" name="expire_hours" type="number" min="1" max=MAX_EXPIRE_HOURS.to_string()
            value=timing.expire_hours.map(|h| h.to_string()).unwrap_or_default()/>
        {match quiet {
            Some(q) => view! { <p class="muted" data-testid="quiet-note">{format!("Quiet hours {q} in each customer's local time: a message that would land inside waits until they end.")}</p> }.into_any(),
            None => view! { <p class="muted" data-testid="quiet-note">"The workspace has no quiet hours."</p> }.into_any(),
        }}
        <fieldset class="purpose">
            <legend>"Purpose"</legend>
            {Purpose::ALL.into_iter().map(|p| {
                let id = format!("purpose-{}", p.as_str());
                view! {
                    <div class="choice">
                        <input type="radio" id=id.clone() name="purpose" value=p.as_str() checked=page.compose.purpose == p/>
                        <label for=id>{p.label()}</label>
                    </div>
                }
            }).collect_view()}
        </fieldset>
        {page.can_pause.then(|| view! {
            <label for="quiet_exempt">"Send through quiet hours: the reason (admins only; audited)"</label>
            <input id="quiet_exempt" name="quiet_exempt" maxlength=MAX_REASON_CHARS.to_string()
                value=timing.quiet_exempt.clone().unwrap_or_default()/>
        })}
    }
}

#[component]
fn AudienceStep(page: WizardPage) -> impl IntoView {
    view! {
        {page.frozen.clone().map(|f| view! {
            <p class="preflight" data-testid="frozen">{format!("{f}; the conditions below narrow it.")}</p>
        })}
        <AudienceEditor
            rule=page.compose.audience
            tags=page.tags
            groups=page.groups
            matching=page.matching
            sample=page.sample/>
    }
}

/// Step 3's fallback: whether a customer the first channel does not reach in time gets the
/// next picked channel that reaches them.
#[component]
fn FallbackFields(hours: Option<u32>) -> impl IntoView {
    view! {
        <fieldset class="fallback">
            <legend>"Fallback"</legend>
            <div class="choice">
                <input type="checkbox" id="fallback" name="fallback" value="1" checked=hours.is_some()/>
                <label for="fallback">"Try the next picked channel that reaches the customer when a channel refuses the message as undeliverable, or has not delivered it within:"</label>
            </div>
            <label for="fallback_hours">"Hours a channel has to deliver"</label>
            <input id="fallback_hours" name="fallback_hours" type="number" min="1" max=MAX_FALLBACK_HOURS.to_string()
                value=hours.unwrap_or(24).to_string()/>
            <p class="muted">"One message at a time: the next channel is tried only once the earlier one has failed for good or its time is up, never while it may still arrive, and never after an unknown outcome. Channels that do not report delivery (Telegram, email) hand over only on a failure."</p>
        </fieldset>
    }
}

#[component]
fn ChannelStep(page: WizardPage, test_to: String) -> impl IntoView {
    let reachable: i64 = page.channels.iter().map(|c| c.reached).sum();
    let template_page = page.needs_template.then(|| page.clone());
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
        <FallbackFields hours=page.compose.timing.fallback_hours/>
        <p class="preflight" role="status">
            {format!("{reachable} of {} matching customers can be reached; {} cannot (no address on the picked channels, or opted out there).", page.matching, page.unreachable)}
        </p>
        {(!page.left_out.is_empty()).then(|| view! {
            <ul class="muted" data-testid="left-out">
                {page.left_out.clone().into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}
            </ul>
        })}
        {page.cost.clone().map(|c| view! {
            <p class="preflight" data-testid="cost">{format!("Estimated cost {c}")}</p>
        })}
        {(!page.media_notes.is_empty()).then(|| view! {
            <ul class="muted" data-testid="media-notes">
                {page.media_notes.clone().into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}
            </ul>
        })}
        {(!page.media_problems.is_empty()).then(|| view! {
            <ul class="error" role="alert" data-testid="media-problems">
                {page.media_problems.clone().into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}
            </ul>
        })}
        {template_page.map(|page| {
            let tabs = page.compose.ab.is_some().then(|| view! { <VariantTabs page=page.clone() what="template"/> });
            view! { {tabs} <TemplateSection page/> }
        })}
        <fieldset class="test-send">
            <legend>"Send a test"</legend>
            <p class="muted">"The message goes to one customer now, personalised for them, on the first picked channel that reaches them. The broadcast itself stays as it is."</p>
            <label for="test_to">"Customer (exact name, phone or email)"</label>
            <input id="test_to" name="test_to" value=test_to autocomplete="off"/>
            <div class="actions">
                <button type="submit" name="go" value="test" class="secondary">"Send test"</button>
                <button type="submit" name="go" value="test_me" class="secondary">"Send test to me"</button>
            </div>
        </fieldset>
    }
}

/// `text` with its first letter in capitals.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Step 3's WhatsApp template: the approved template (with its language) and, for each of its
/// parameters, a customer field with a fallback or a fixed text. "Apply and count" shows the
/// chosen template's parameters and its preview; what is missing is named here and again
/// before it can be scheduled.
#[component]
fn TemplateSection(page: WizardPage) -> impl IntoView {
    use crate::model::template::{PARAM_FIELDS, ParamSource};
    let chosen = page.compose.template.clone();
    let key = |name: &str, language: &str| format!("{name}|{language}");
    let chosen_key = chosen
        .as_ref()
        .map(|c| key(&c.name, &c.language))
        .unwrap_or_default();
    let template = chosen.as_ref().and_then(|c| {
        page.templates
            .iter()
            .find(|t| t.name == c.name && t.language == c.language)
            .cloned()
    });
    let approved: Vec<_> = page
        .templates
        .iter()
        .filter(|t| t.approved())
        .cloned()
        .collect();
    view! {
        <fieldset class="template">
            <legend>{match page.compose.ab.is_some() {
                true => format!("WhatsApp message template of variant {}", letter(page.variant)),
                false => "WhatsApp message template".to_string(),
            }}</legend>
            <input type="hidden" name="template_shown" value="1"/>
            <p class="muted">"WhatsApp delivers a broadcast only as an approved template to customers who have not written in the last 24 hours."</p>
            {if approved.is_empty() {
                view! { <p class="error" role="alert">"This WhatsApp channel has no approved template: read its templates on the channels page (it needs its Business Account ID)."</p> }.into_any()
            } else {
                view! {
                    <label for="template">"Template"</label>
                    <select id="template" name="template">
                        <option value="" selected=chosen_key.is_empty()>"Choose…"</option>
                        {approved.into_iter().map(|t| {
                            let value = key(&t.name, &t.language);
                            let selected = value == chosen_key;
                            view! { <option value=value selected=selected>{format!("{} ({}, {})", t.name, t.language, t.category.to_lowercase())}</option> }
                        }).collect_view()}
                    </select>
                }.into_any()
            }}
            {template.map(|t| {
                let choice = chosen.clone().unwrap_or_default();
                let header_media = t.header_media().map(|media| {
                    let fitting: Vec<_> = page.compose.attachments.iter()
                        .filter(|a| crate::model::template::fits_header(media, a))
                        .cloned()
                        .collect();
                    let current = choice.header_media.clone().unwrap_or_default();
                    view! {
                        <label for="tp-header-media">{format!("Header {media} (one of the broadcast's attachments)")}</label>
                        <select id="tp-header-media" name="tp_header_media">
                            <option value="" selected=current.is_empty()>"Choose…"</option>
                            {fitting.into_iter().map(|a| {
                                let selected = a.id == current;
                                view! { <option value=a.id.clone() selected=selected>{a.name.clone()}</option> }
                            }).collect_view()}
                        </select>
                    }
                });
                view! {
                    <p class="muted small">{format!("Text: {}", t.body())}</p>
                    {header_media}
                    {t.slots().into_iter().map(|slot| {
                        let param = slot.key.clone();
                        let current = choice.params.iter().find(|p| p.name == param).cloned();
                        let (src, text) = match current.as_ref().map(|c| &c.source) {
                            Some(ParamSource::Text(v)) => ("text".to_string(), v.clone()),
                            Some(ParamSource::Field(f)) => (f.clone(), String::new()),
                            None if slot.required => ("first_name".to_string(), String::new()),
                            None => ("text".to_string(), String::new()),
                        };
                        let fallback = current.map(|c| c.fallback).unwrap_or_default();
                        let id = |what: &str| format!("tp-{what}-{}", param.replace('.', "-"));
                        view! {
                            <div class="template-param">
                                <label for=id("src")>{format!("{} is filled with", capitalized(&slot.label))}</label>
                                <select id=id("src") name=format!("tp_src_{param}")>
                                    {PARAM_FIELDS.iter().map(|(k, label)| view! {
                                        <option value=*k selected=src == *k>{format!("the customer's {}", label.to_lowercase())}</option>
                                    }).collect_view()}
                                    <option value="text" selected=src == "text">"this text"</option>
                                </select>
                                <label for=id("val")>"Text (for “this text”)"</label>
                                <input id=id("val") name=format!("tp_val_{param}") value=text maxlength="1024"/>
                                <label for=id("fb")>"Fallback when the customer has none"</label>
                                <input id=id("fb") name=format!("tp_fb_{param}") value=fallback maxlength="1024"/>
                            </div>
                        }
                    }).collect_view()}
                    <label class="check">
                        <input type="checkbox" name="tp_window" value="1" checked=choice.free_text_in_window/>
                        " Send the message's own text and files instead to customers who wrote to this number in the last 24 hours"
                    </label>
                }
            })}
            {page.in_window.map(|(inside, on_whatsapp)| {
                let free = chosen.as_ref().is_some_and(|c| c.free_text_in_window);
                let text = if free {
                    format!("On WhatsApp: {inside} of {on_whatsapp} customers wrote within 24 hours and get the free text; {} get the template.", on_whatsapp - inside)
                } else {
                    format!("On WhatsApp: all {on_whatsapp} customers get the template ({inside} of them wrote within 24 hours).")
                };
                view! { <p class="preflight" role="status" data-testid="template-split">{text}</p> }
            })}
            {page.template_preview.clone().map(|lines| view! {
                <div class="preview" data-testid="template-preview">
                    <p class="muted small">"As WhatsApp will show it (for Ann Example):"</p>
                    {lines.into_iter().map(|l| view! { <p>{l}</p> }).collect_view()}
                </div>
            })}
            {(!page.template_problems.is_empty()).then(|| view! {
                <ul class="error" role="alert" data-testid="template-problems">
                    {page.template_problems.clone().into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
                </ul>
            })}
            <button type="submit" name="go" value="stay" class="secondary">"Apply template"</button>
        </fieldset>
    }
}
