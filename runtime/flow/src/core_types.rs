//! weft's built-in types: flowable tasks, triggers, conditions, inputs, retries and SLAs, with
//! Kestra's current names, their legacy aliases and their properties.
//!
//! The core runnable tasks (Log, Return, HTTP, storage, ...) are implemented by WASM plugins; they
//! are declared here too so that a flow can be validated without loading any plugin, and a loaded
//! plugin's own description replaces the declaration (see `Registry::register`).

use crate::check::Checker;
use crate::diagnostic::FieldPath;
use crate::registry::{Registry, TypeDef};
use crate::schema::{Category, Prop, Schema, StringFormat};
use crate::yaml::{Node, Value};

const STATES: &[&str] = &[
    "CREATED",
    "QUEUED",
    "RUNNING",
    "PAUSED",
    "RESTARTED",
    "KILLING",
    "RETRYING",
    "SUCCESS",
    "WARNING",
    "FAILED",
    "KILLED",
    "CANCELLED",
    "SKIPPED",
    "RETRIED",
];

/// Names of the input types.
pub const INPUT_TYPES: &[&str] = &[
    "STRING",
    "INT",
    "FLOAT",
    "BOOLEAN",
    "BOOL",
    "DATETIME",
    "DATE",
    "TIME",
    "DURATION",
    "FILE",
    "JSON",
    "YAML",
    "URI",
    "SECRET",
    "ARRAY",
    "SELECT",
    "MULTISELECT",
    "ENUM",
    "EMAIL",
];

const LOG_LEVELS: &[&str] = &["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

fn p(name: &str, schema: Schema) -> Prop {
    Prop::new(name, schema)
}

fn obj(props: Vec<Prop>) -> Schema {
    Schema::object(props)
}

fn string_or_list() -> Schema {
    Schema::OneOf(vec![Schema::string(), Schema::array(Schema::string())])
}

fn any_list_or_string() -> Schema {
    Schema::OneOf(vec![Schema::string(), Schema::array(Schema::Any)])
}

fn states() -> Schema {
    Schema::array(Schema::one_of_values(STATES))
}

/// `errors` and `finally`, which every flowable task may have.
fn with_branches(mut props: Vec<Prop>) -> Vec<Prop> {
    props.push(p("errors", Schema::tasks()));
    props.push(p("finally", Schema::tasks()));
    props
}

fn flowable(name: &str, legacy: &[&str], props: Vec<Prop>) -> TypeDef {
    TypeDef::core(Category::Task, name, obj(with_branches(props))).aliases(legacy)
}

fn runnable(name: &str, legacy: &[&str], props: Vec<Prop>) -> TypeDef {
    TypeDef::core(Category::Task, name, obj(props))
        .aliases(legacy)
        .runnable()
}

fn subflow_props(with_items: bool) -> Vec<Prop> {
    let mut v = vec![
        p("namespace", Schema::string()).required(),
        p("flowId", Schema::string()).required(),
        p("revision", Schema::int_min(1)),
        p("inputs", Schema::map(Schema::Any)),
        p("labels", Schema::Labels),
        p("wait", Schema::bool()),
        p("transmitFailed", Schema::bool()),
        p("inheritLabels", Schema::bool()),
        p("scheduleDate", Schema::string()),
        p(
            "restartBehavior",
            Schema::one_of_values(&["NEW_EXECUTION", "RETRY_FAILED"]),
        ),
    ];
    if with_items {
        v.push(p("items", Schema::string()).required());
        v.push(p(
            "batch",
            obj(vec![
                p("rows", Schema::int_min(1)),
                p("bytes", Schema::string()),
                p("partitions", Schema::int_min(1)),
                p("separator", Schema::string()),
            ]),
        ));
    } else {
        v.push(
            p("outputs", Schema::map(Schema::Any)).deprecated("use the flow's `outputs` instead"),
        );
    }
    v
}

fn task_types() -> Vec<TypeDef> {
    const F: &str = "io.kestra.core.tasks.flows.";
    let legacy = |name: &str| format!("{F}{name}");
    let l = |name: &str| vec![legacy(name)];
    let aliases = |v: Vec<String>| v;
    let mk = |name: &str, old: Vec<String>, props: Vec<Prop>| {
        let refs: Vec<&str> = old.iter().map(String::as_str).collect();
        flowable(name, &refs, props)
    };
    vec![
        mk(
            "io.kestra.plugin.core.flow.Sequential",
            l("Sequential"),
            vec![p("tasks", Schema::tasks()).required().non_empty()],
        ),
        mk(
            "io.kestra.plugin.core.flow.Parallel",
            l("Parallel"),
            vec![
                p("tasks", Schema::tasks()).required().non_empty(),
                p("concurrent", Schema::int_min(0)),
            ],
        ),
        mk(
            "io.kestra.plugin.core.flow.ForEach",
            l("ForEach"),
            vec![
                p("values", any_list_or_string()).required(),
                p("concurrencyLimit", Schema::int_min(0)),
                p("tasks", Schema::tasks()).required().non_empty(),
            ],
        ),
        mk(
            "io.kestra.plugin.core.flow.EachSequential",
            l("EachSequential"),
            vec![
                p("value", any_list_or_string()).required(),
                p("tasks", Schema::tasks()).required().non_empty(),
            ],
        )
        .deprecated("use io.kestra.plugin.core.flow.ForEach"),
        mk(
            "io.kestra.plugin.core.flow.EachParallel",
            l("EachParallel"),
            vec![
                p("value", any_list_or_string()).required(),
                p("concurrent", Schema::int_min(0)),
                p("tasks", Schema::tasks()).required().non_empty(),
            ],
        )
        .deprecated("use io.kestra.plugin.core.flow.ForEach with concurrencyLimit"),
        mk(
            "io.kestra.plugin.core.flow.Switch",
            l("Switch"),
            vec![
                p("value", Schema::string()).required(),
                p("cases", Schema::map(Schema::tasks())),
                p("defaults", Schema::tasks()),
            ],
        )
        .hook(check_switch),
        mk(
            "io.kestra.plugin.core.flow.If",
            l("If"),
            vec![
                p("condition", Schema::string()).required(),
                p("then", Schema::tasks()).required().non_empty(),
                p("else", Schema::tasks()),
            ],
        ),
        mk(
            "io.kestra.plugin.core.flow.AllowFailure",
            l("AllowFailure"),
            vec![p("tasks", Schema::tasks()).required().non_empty()],
        )
        .deprecated("use the `allowFailure` property of a task"),
        mk(
            "io.kestra.plugin.core.flow.Dag",
            l("Dag"),
            vec![
                p(
                    "tasks",
                    Schema::array(obj(vec![
                        p("task", Schema::Typed(Category::Task)).required(),
                        p("dependsOn", Schema::array(Schema::String(StringFormat::Id))).literal(),
                    ])),
                )
                .required()
                .non_empty(),
                p("concurrent", Schema::int_min(0)),
            ],
        )
        .hook(check_dag),
        mk(
            "io.kestra.plugin.core.flow.Subflow",
            aliases(vec![legacy("Subflow"), legacy("Flow")]),
            subflow_props(false),
        )
        .hook(check_recursion),
        mk(
            "io.kestra.plugin.core.flow.ForEachItem",
            l("ForEachItem"),
            subflow_props(true),
        )
        .hook(check_recursion),
        mk(
            "io.kestra.plugin.core.flow.Pause",
            l("Pause"),
            vec![
                p("delay", Schema::duration()),
                p("pauseDuration", Schema::duration()),
                p("timeout", Schema::duration()),
                p(
                    "behavior",
                    Schema::one_of_values(&["RESUME", "WARN", "FAIL", "CANCEL"]),
                ),
                p("onResume", Schema::array(Schema::Typed(Category::Input))),
                p("tasks", Schema::tasks()).deprecated("put the tasks after the Pause task"),
            ],
        ),
        mk(
            "io.kestra.plugin.core.flow.WaitFor",
            l("WaitFor"),
            vec![
                p("condition", Schema::string()).required(),
                p("tasks", Schema::tasks()).required().non_empty(),
                p("failOnMaxReached", Schema::bool()),
                p(
                    "checkFrequency",
                    obj(vec![
                        p("maxIterations", Schema::int_min(1)),
                        p("maxDuration", Schema::duration()),
                        p("interval", Schema::duration()),
                    ]),
                ),
            ],
        ),
        mk(
            "io.kestra.plugin.core.flow.WorkingDirectory",
            l("WorkingDirectory"),
            vec![
                p("tasks", Schema::tasks()),
                p(
                    "cache",
                    obj(vec![
                        p("patterns", Schema::array(Schema::string())).required(),
                        p("ttl", Schema::duration()),
                    ]),
                ),
                p(
                    "inputFiles",
                    Schema::OneOf(vec![Schema::map(Schema::string()), Schema::string()]),
                ),
                p("outputFiles", Schema::array(Schema::string())),
                p("namespaceFiles", Schema::map(Schema::Any)),
            ],
        )
        .hook(check_working_directory),
        mk(
            "io.kestra.plugin.core.flow.Template",
            l("Template"),
            vec![
                p("namespace", Schema::string()).required(),
                p("templateId", Schema::string()).required(),
                p("tenantId", Schema::string()),
                p("args", Schema::map(Schema::string())),
            ],
        )
        .deprecated("templates are removed from Kestra; use a Subflow"),
        TypeDef::core(
            Category::Task,
            "io.kestra.plugin.core.execution.Fail",
            obj(vec![
                p("condition", Schema::string()),
                p("errorMessage", Schema::string()),
            ]),
        )
        .aliases(&["io.kestra.core.tasks.executions.Fail"]),
        TypeDef::core(
            Category::Task,
            "io.kestra.plugin.core.execution.Exit",
            obj(vec![p(
                "state",
                Schema::one_of_values(&["SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELLED"]),
            )]),
        )
        .aliases(&["io.kestra.core.tasks.executions.Exit"]),
        TypeDef::core(
            Category::Task,
            "io.kestra.plugin.core.output.OutputValues",
            obj(vec![p("values", Schema::map(Schema::Any))]),
        )
        .aliases(&["io.kestra.core.tasks.outputs.OutputValues"]),
        TypeDef::core(
            Category::Task,
            "io.kestra.plugin.core.execution.Labels",
            obj(vec![
                p(
                    "labels",
                    Schema::OneOf(vec![Schema::Labels, Schema::string()]),
                )
                .required(),
            ]),
        )
        .aliases(&["io.kestra.core.tasks.executions.Labels"]),
        TypeDef::core(
            Category::Task,
            "io.kestra.plugin.core.execution.Resume",
            obj(vec![
                p("namespace", Schema::string()),
                p("flowId", Schema::string()),
                p("executionId", Schema::string()),
                p("inputs", Schema::map(Schema::Any)),
            ]),
        )
        .aliases(&["io.kestra.core.tasks.executions.Resume"]),
        TypeDef::core(
            Category::Task,
            "io.kestra.plugin.core.trigger.Toggle",
            obj(vec![
                p("namespace", Schema::string()),
                p("flowId", Schema::string()),
                p("trigger", Schema::string()).required(),
                p("enabled", Schema::bool()),
            ]),
        )
        .aliases(&["io.kestra.core.tasks.trigger.Toggle"]),
        TypeDef::core(
            Category::Task,
            "io.kestra.plugin.core.log.Fetch",
            obj(vec![
                p("namespace", Schema::string()),
                p("flowId", Schema::string()),
                p("executionId", Schema::string()),
                p("tasksId", Schema::array(Schema::string())),
                // deprecated by Kestra for `tasksId`
                p("taskId", Schema::string()),
                p("level", Schema::one_of_values(LOG_LEVELS)),
            ]),
        )
        .aliases(&["io.kestra.core.tasks.log.Fetch"]),
        TypeDef::core(
            Category::Task,
            "io.kestra.plugin.core.kv.Set",
            obj(vec![
                p("key", Schema::string()).required(),
                p("value", Schema::Any).required(),
                p("namespace", Schema::string()),
                p("overwrite", Schema::bool()),
                p("ttl", Schema::duration()),
                p(
                    "kvType",
                    Schema::one_of_values(&[
                        "STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON",
                    ]),
                ),
            ]),
        ),
        TypeDef::core(
            Category::Task,
            "io.kestra.plugin.core.kv.Get",
            obj(vec![
                p("key", Schema::string()).required(),
                p("namespace", Schema::string()),
                p("errorOnMissing", Schema::bool()),
            ]),
        ),
        TypeDef::core(
            Category::Task,
            "io.kestra.plugin.core.kv.Delete",
            obj(vec![
                p("key", Schema::string()).required(),
                p("namespace", Schema::string()),
                p("errorOnMissing", Schema::bool()),
            ]),
        ),
        // Runnable tasks, implemented by the core plugins.
        runnable(
            "io.kestra.plugin.core.log.Log",
            &["io.kestra.core.tasks.log.Log"],
            vec![
                p("message", string_or_list()).required(),
                p("level", Schema::one_of_values(LOG_LEVELS)),
            ],
        ),
        runnable(
            "io.kestra.plugin.core.debug.Return",
            &["io.kestra.core.tasks.debugs.Return"],
            vec![p("format", Schema::string())],
        ),
        runnable(
            "io.kestra.plugin.core.debug.Echo",
            &["io.kestra.core.tasks.debugs.Echo"],
            vec![
                p("format", Schema::string()).required(),
                p("level", Schema::one_of_values(LOG_LEVELS)),
            ],
        )
        .deprecated("use io.kestra.plugin.core.log.Log"),
        runnable(
            "io.kestra.plugin.core.flow.Sleep",
            &["io.kestra.core.tasks.flows.Sleep"],
            vec![p("duration", Schema::duration()).required()],
        ),
        runnable(
            "io.kestra.plugin.core.storage.LocalFiles",
            &["io.kestra.core.tasks.storages.LocalFiles"],
            vec![
                p(
                    "inputs",
                    Schema::OneOf(vec![Schema::map(Schema::string()), Schema::string()]),
                ),
                p("outputs", Schema::array(Schema::string())),
            ],
        )
        .deprecated("use io.kestra.plugin.core.flow.WorkingDirectory's inputFiles and outputFiles"),
        runnable(
            "io.kestra.plugin.core.storage.Write",
            &[],
            vec![
                p("content", Schema::string()).required(),
                p("extension", Schema::string()),
            ],
        ),
        runnable(
            "io.kestra.plugin.core.storage.Concat",
            &["io.kestra.core.tasks.storages.Concat"],
            vec![
                p("files", any_list_or_string()).required(),
                p("separator", Schema::string()),
                p("extension", Schema::string()),
            ],
        ),
        runnable(
            "io.kestra.plugin.core.storage.Split",
            &["io.kestra.core.tasks.storages.Split"],
            vec![
                p("from", Schema::string()).required(),
                p("bytes", Schema::string()),
                p("partitions", Schema::int_min(1)),
                p("rows", Schema::int_min(1)),
                p("separator", Schema::string()),
            ],
        ),
        runnable(
            "io.kestra.plugin.core.storage.Size",
            &["io.kestra.core.tasks.storages.Size"],
            vec![p("uri", Schema::string()).required()],
        ),
        runnable(
            "io.kestra.plugin.core.storage.Delete",
            &["io.kestra.core.tasks.storages.Delete"],
            vec![
                p("uri", Schema::string()).required(),
                p("errorOnMissing", Schema::bool()),
            ],
        ),
        runnable(
            "io.kestra.plugin.core.http.Request",
            &["io.kestra.plugin.fs.http.Request"],
            http_props(false),
        ),
        runnable(
            "io.kestra.plugin.core.http.Download",
            &["io.kestra.plugin.fs.http.Download"],
            http_props(true),
        ),
    ]
}

fn http_props(download: bool) -> Vec<Prop> {
    let mut v = vec![
        p("uri", Schema::string()).required(),
        p(
            "method",
            Schema::one_of_values(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        ),
        p("headers", Schema::map(Schema::Any)),
        p("body", Schema::Any),
        p("formData", Schema::map(Schema::Any)),
        p("contentType", Schema::string()),
        p("options", Schema::map(Schema::Any)),
        p("sslOptions", Schema::map(Schema::Any)),
        p("allowFailed", Schema::bool()),
        p("encryptBody", Schema::bool()),
    ];
    if download {
        v.push(p("failOnEmptyResponse", Schema::bool()));
    }
    v
}

fn task_common() -> Schema {
    obj(vec![
        p("id", Schema::String(StringFormat::Id))
            .required()
            .literal(),
        p("type", Schema::string()).required().literal(),
        p("description", Schema::string()).literal(),
        p("disabled", Schema::bool()),
        p("runIf", Schema::string()),
        p("timeout", Schema::duration()),
        p("retry", Schema::Typed(Category::Retry)),
        p("allowFailure", Schema::bool()),
        p("allowWarning", Schema::bool()),
        p("logLevel", Schema::one_of_values(LOG_LEVELS)),
        p("logToFile", Schema::bool()),
        p("workerGroup", worker_group()),
    ])
}

fn worker_group() -> Schema {
    obj(vec![
        p("key", Schema::string()),
        p(
            "fallback",
            Schema::one_of_values(&["FAIL", "WAIT", "CANCEL"]),
        ),
    ])
}

fn trigger_common() -> Schema {
    obj(vec![
        p("id", Schema::String(StringFormat::Id))
            .required()
            .literal(),
        p("type", Schema::string()).required().literal(),
        p("description", Schema::string()).literal(),
        p("disabled", Schema::bool()),
        p(
            "conditions",
            Schema::array(Schema::Typed(Category::Condition)),
        ),
        p("stopAfter", states()),
        p("logToFile", Schema::bool()),
        p("minLogLevel", Schema::one_of_values(LOG_LEVELS)),
        p("workerGroup", worker_group()),
        p("failOnTriggerError", Schema::bool()),
    ])
}

fn trigger_types() -> Vec<TypeDef> {
    let t = |name: &str, legacy: &str, props: Vec<Prop>| {
        TypeDef::core(Category::Trigger, name, obj(props)).aliases(&[legacy])
    };
    vec![
        t(
            "io.kestra.plugin.core.trigger.Schedule",
            "io.kestra.core.models.triggers.types.Schedule",
            vec![
                p("cron", Schema::String(StringFormat::Cron))
                    .required()
                    .literal(),
                p("withSeconds", Schema::bool()),
                p("timezone", Schema::string()).literal(),
                p("inputs", Schema::map(Schema::Any)),
                p("labels", Schema::Labels),
                p(
                    "backfill",
                    obj(vec![
                        p("start", Schema::string()),
                        p("end", Schema::string()),
                        p("currentDate", Schema::string()),
                        p("previousNextExecutionDate", Schema::string()),
                        p("inputs", Schema::map(Schema::Any)),
                        p("labels", Schema::Labels),
                        p("paused", Schema::bool()),
                    ]),
                )
                .deprecated("use a backfill from the API"),
                p("lateMaximumDelay", Schema::duration()),
                p(
                    "recoverMissedSchedules",
                    Schema::one_of_values(&["ALL", "LAST", "NONE"]),
                ),
                p(
                    "scheduleConditions",
                    Schema::array(Schema::Typed(Category::Condition)),
                )
                .deprecated("use `conditions`"),
                p("interval", Schema::duration()).deprecated("no longer used"),
            ],
        ),
        t(
            "io.kestra.plugin.core.trigger.ScheduleOnDates",
            "io.kestra.core.models.triggers.types.ScheduleOnDates",
            vec![
                p("dates", any_list_or_string()).required(),
                p("timezone", Schema::string()).literal(),
                p("inputs", Schema::map(Schema::Any)),
                p("labels", Schema::Labels),
                p(
                    "recoverMissedSchedules",
                    Schema::one_of_values(&["ALL", "LAST", "NONE"]),
                ),
                p("interval", Schema::duration()),
            ],
        ),
        t(
            "io.kestra.plugin.core.trigger.Flow",
            "io.kestra.core.models.triggers.types.Flow",
            vec![
                p("inputs", Schema::map(Schema::Any)),
                p("states", states()),
                p("labels", Schema::Labels),
                p(
                    "preconditions",
                    obj(vec![
                        p("id", Schema::String(StringFormat::Id)).literal(),
                        p(
                            "flows",
                            Schema::array(obj(vec![
                                p("namespace", Schema::string()),
                                p("flowId", Schema::string()),
                                p("states", states()),
                                p("labels", Schema::Labels),
                            ])),
                        ),
                        p(
                            "where",
                            Schema::array(obj(vec![
                                p("id", Schema::string()).required().literal(),
                                p("operand", Schema::one_of_values(&["AND", "OR"])),
                                p(
                                    "filters",
                                    Schema::array(obj(vec![
                                        p(
                                            "field",
                                            Schema::one_of_values(&[
                                                "FLOW_ID",
                                                "NAMESPACE",
                                                "STATE",
                                                "EXPRESSION",
                                            ]),
                                        )
                                        .required(),
                                        p(
                                            "type",
                                            Schema::one_of_values(&[
                                                "EQUAL_TO",
                                                "NOT_EQUAL_TO",
                                                "IS_NULL",
                                                "IS_NOT_NULL",
                                                "IS_TRUE",
                                                "IS_FALSE",
                                                "STARTS_WITH",
                                                "ENDS_WITH",
                                                "REGEX",
                                                "CONTAINS",
                                                "IN",
                                                "NOT_IN",
                                                "PREFIX",
                                            ]),
                                        )
                                        .required(),
                                        p("value", Schema::string()),
                                        p("values", Schema::array(Schema::string())),
                                    ])),
                                )
                                .required(),
                            ])),
                        ),
                        p("timeWindow", time_window()),
                        p("resetOnSuccess", Schema::bool()),
                    ]),
                ),
            ],
        ),
        t(
            "io.kestra.plugin.core.trigger.Webhook",
            "io.kestra.core.models.triggers.types.Webhook",
            vec![
                p("key", Schema::string()).required(),
                p("inputs", Schema::map(Schema::Any)),
                p("wait", Schema::bool()),
                p("returnOutputs", Schema::bool()),
            ],
        ),
    ]
}

fn time_window() -> Schema {
    obj(vec![
        p(
            "type",
            Schema::one_of_values(&[
                "DURATION_WINDOW",
                "SLIDING_WINDOW",
                "DAILY_TIME_DEADLINE",
                "DAILY_TIME_WINDOW",
            ]),
        ),
        p("window", Schema::duration()),
        p("windowAdvance", Schema::duration()),
        p("startTime", Schema::string()),
        p("endTime", Schema::string()),
        p("deadline", Schema::string()),
    ])
}

fn condition_types() -> Vec<TypeDef> {
    const NEW: &str = "io.kestra.plugin.core.condition.";
    const OLD: &str = "io.kestra.core.models.conditions.types.";
    let c = |short: &str, props: Vec<Prop>| {
        let long = format!("{short}Condition");
        TypeDef::core(Category::Condition, &format!("{NEW}{short}"), obj(props))
            .aliases(&[&format!("{NEW}{long}"), &format!("{OLD}{long}")])
    };
    let date = || p("date", Schema::string());
    let in_states = || vec![p("in", states()), p("notIn", states())];
    vec![
        c(
            "ExecutionFlow",
            vec![
                p("namespace", Schema::string()).required(),
                p("flowId", Schema::string()).required(),
            ],
        ),
        c("ExecutionStatus", in_states()),
        c(
            "ExecutionNamespace",
            vec![
                p("namespace", Schema::string()).required(),
                p(
                    "comparison",
                    Schema::one_of_values(&["EQUALS", "PREFIX", "SUFFIX"]),
                ),
                p("prefix", Schema::bool()),
            ],
        ),
        c(
            "ExecutionLabels",
            vec![p("labels", Schema::Labels).required()],
        ),
        c(
            "ExecutionOutputs",
            vec![p("expression", Schema::string()).required()],
        ),
        c(
            "Expression",
            vec![p("expression", Schema::string()).required()],
        )
        .aliases(&[&format!("{OLD}VariableCondition")]),
        c(
            "Multiple",
            vec![
                p("id", Schema::String(StringFormat::Id)).literal(),
                p("window", Schema::duration()),
                p("windowAdvance", Schema::duration()),
                p("timeWindow", time_window()),
                p(
                    "conditions",
                    Schema::map(Schema::Typed(Category::Condition)),
                )
                .required()
                .non_empty(),
                p("resetOnSuccess", Schema::bool()),
            ],
        ),
        c(
            "DayWeek",
            vec![date(), p("dayOfWeek", Schema::string()).required()],
        ),
        c(
            "DayWeekInMonth",
            vec![
                date(),
                p("dayOfWeek", Schema::string()).required(),
                p(
                    "dayInMonth",
                    Schema::one_of_values(&["FIRST", "LAST", "SECOND", "THIRD", "FOURTH"]),
                )
                .required(),
            ],
        ),
        c(
            "DateTimeBetween",
            vec![
                date(),
                p("after", Schema::string()),
                p("before", Schema::string()),
            ],
        ),
        c(
            "TimeBetween",
            vec![
                date(),
                p("after", Schema::string()),
                p("before", Schema::string()),
            ],
        ),
        c("Weekend", vec![date()]),
        c(
            "Not",
            vec![
                p(
                    "conditions",
                    Schema::array(Schema::Typed(Category::Condition)),
                )
                .required()
                .non_empty(),
            ],
        ),
        c(
            "Or",
            vec![
                p(
                    "conditions",
                    Schema::array(Schema::Typed(Category::Condition)),
                )
                .required()
                .non_empty(),
            ],
        ),
        c(
            "Flow",
            vec![
                p("namespace", Schema::string()).required(),
                p("flowId", Schema::string()).required(),
            ],
        ),
        c(
            "FlowNamespace",
            vec![
                p("namespace", Schema::string()).required(),
                p("prefix", Schema::bool()),
            ],
        ),
        c("HasRetryAttempt", in_states()),
        c(
            "PublicHoliday",
            vec![
                date(),
                p("country", Schema::string()),
                p("subDivision", Schema::string()),
            ],
        ),
    ]
}

fn input_common() -> Schema {
    obj(vec![
        p("id", Schema::String(StringFormat::Id)).literal(),
        p("name", Schema::String(StringFormat::Id))
            .literal()
            .deprecated("use `id`"),
        p("type", Schema::string()).required().literal(),
        p("description", Schema::string()).literal(),
        p("displayName", Schema::string()).literal(),
        p("required", Schema::bool()),
        p("defaults", Schema::Any),
        p("prefill", Schema::Any),
        p(
            "dependsOn",
            obj(vec![
                p("inputs", Schema::array(Schema::String(StringFormat::Id))).literal(),
                p("condition", Schema::string()),
            ]),
        ),
    ])
}

fn input_types() -> Vec<TypeDef> {
    let i = |name: &str, props: Vec<Prop>| TypeDef::core(Category::Input, name, obj(props));
    let bounds = |s: fn() -> Schema| vec![p("min", s()), p("max", s())];
    let dates = || vec![p("after", Schema::string()), p("before", Schema::string())];
    let select = || {
        vec![
            p("values", any_list_or_string()),
            p("expression", Schema::string()),
            p("allowCustomValue", Schema::bool()),
            p("autoSelectFirst", Schema::bool()),
            p("isRadio", Schema::bool()),
        ]
    };
    vec![
        i(
            "STRING",
            vec![p("validator", Schema::String(StringFormat::Regex)).literal()],
        ),
        i("INT", bounds(Schema::int)),
        i("FLOAT", bounds(|| Schema::Number)),
        i("BOOLEAN", vec![]),
        i("BOOL", vec![]),
        i("DATETIME", dates()),
        i("DATE", dates()),
        i("TIME", dates()),
        i("DURATION", bounds(Schema::duration)),
        i(
            "FILE",
            vec![
                p("extension", Schema::string()),
                p("allowedFileExtensions", Schema::array(Schema::string())),
            ],
        ),
        i("JSON", vec![]),
        i("YAML", vec![]),
        i("URI", vec![]),
        i(
            "SECRET",
            vec![p("validator", Schema::String(StringFormat::Regex)).literal()],
        ),
        i("EMAIL", vec![]),
        i(
            "ARRAY",
            vec![p("itemType", Schema::one_of_values(INPUT_TYPES)).required()],
        ),
        i("SELECT", select()),
        i("MULTISELECT", {
            let mut v = select();
            v.push(p("options", Schema::array(Schema::string())).deprecated("use `values`"));
            v
        }),
        i(
            "ENUM",
            vec![
                p("values", Schema::array(Schema::string()))
                    .required()
                    .non_empty(),
            ],
        )
        .deprecated("use SELECT"),
    ]
}

fn retry_types() -> Vec<TypeDef> {
    let r = |name: &str, props: Vec<Prop>| TypeDef::core(Category::Retry, name, obj(props));
    vec![
        r(
            "constant",
            vec![p("interval", Schema::duration()).required()],
        ),
        r(
            "exponential",
            vec![
                p("interval", Schema::duration()).required(),
                p("maxInterval", Schema::duration()).required(),
                p("delayFactor", Schema::Number),
            ],
        ),
        r(
            "random",
            vec![
                p("minInterval", Schema::duration()).required(),
                p("maxInterval", Schema::duration()).required(),
            ],
        ),
    ]
}

fn retry_common() -> Schema {
    obj(vec![
        p("type", Schema::string()).required().literal(),
        p("maxAttempt", Schema::int_min(1)),
        p("maxAttempts", Schema::int_min(1)).deprecated("use `maxAttempt`"),
        p("maxDuration", Schema::duration()),
        p("warningOnRetry", Schema::bool()),
        p(
            "behavior",
            Schema::one_of_values(&["RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"]),
        ),
    ])
}

fn sla_types() -> Vec<TypeDef> {
    vec![
        TypeDef::core(
            Category::Sla,
            "MAX_DURATION",
            obj(vec![p("duration", Schema::duration()).required()]),
        ),
        TypeDef::core(
            Category::Sla,
            "EXECUTION_ASSERTION",
            obj(vec![p("assert", Schema::string()).required()]),
        ),
    ]
}

fn sla_common() -> Schema {
    obj(vec![
        p("id", Schema::String(StringFormat::Id))
            .required()
            .literal(),
        p("type", Schema::string()).required().literal(),
        p(
            "behavior",
            Schema::one_of_values(&["FAIL", "CANCEL", "NONE"]),
        )
        .required(),
        p("labels", Schema::Labels),
    ])
}

/// Registers every core type.
pub(crate) fn register(r: &mut Registry) {
    r.set_common(Category::Task, task_common(), Some(check_task_common));
    r.set_common(Category::Trigger, trigger_common(), None);
    r.set_common(
        Category::Condition,
        obj(vec![p("type", Schema::string()).required().literal()]),
        None,
    );
    r.set_common(Category::Input, input_common(), Some(check_input));
    r.set_common(Category::Retry, retry_common(), None);
    r.set_common(Category::Sla, sla_common(), None);
    let all = task_types()
        .into_iter()
        .chain(trigger_types())
        .chain(condition_types())
        .chain(input_types())
        .chain(retry_types())
        .chain(sla_types());
    for def in all {
        // Core names are unique by construction (checked by `core_registry_has_no_clashes`).
        let _ = r.register(def);
    }
}

fn task_id(node: &Node) -> String {
    node.get("id")
        .and_then(Node::scalar_text)
        .unwrap_or_default()
}

fn check_task_common(c: &mut Checker<'_>, node: &Node, path: &FieldPath) {
    if let Some((k, v)) = node.entry("workerGroup")
        && v.value != Value::Null
    {
        c.warn(
            k.pos,
            &path.key("workerGroup"),
            "Worker Group is an Enterprise Edition functionality; weft accepts it and ignores it",
        );
    }
}

fn check_switch(c: &mut Checker<'_>, node: &Node, path: &FieldPath) {
    let has = |key: &str| {
        node.get(key).is_some_and(|v| match &v.value {
            Value::Seq(s) => !s.is_empty(),
            Value::Map(m) => m
                .iter()
                .any(|(_, tasks)| tasks.as_seq().is_some_and(|s| !s.is_empty())),
            _ => false,
        })
    };
    if !has("cases") && !has("defaults") {
        c.error(
            node.pos,
            path,
            format!(
                "{}: No task defined, neither cases or default have any tasks",
                task_id(node)
            ),
        );
    }
}

fn check_working_directory(c: &mut Checker<'_>, node: &Node, path: &FieldPath) {
    let empty = node
        .get("tasks")
        .is_none_or(|t| t.as_seq().is_none_or(<[Node]>::is_empty));
    if empty {
        c.error(
            node.pos,
            &path.key("tasks"),
            format!("{}: The 'tasks' property cannot be empty", task_id(node)),
        );
    }
}

fn check_recursion(c: &mut Checker<'_>, node: &Node, path: &FieldPath) {
    let ns = node.get("namespace").and_then(Node::scalar_text);
    let id = node.get("flowId").and_then(Node::scalar_text);
    if let (Some(ns), Some(id), Some(flow_ns), Some(flow_id)) = (ns, id, &c.namespace, &c.flow_id)
        && ns == *flow_ns
        && id == *flow_id
    {
        c.error(
            node.pos,
            path,
            format!("Invalid Flow: Recursive call to flow [{ns}.{id}]"),
        );
    }
}

fn check_dag(c: &mut Checker<'_>, node: &Node, path: &FieldPath) {
    let Some(entries) = node.get("tasks").and_then(Node::as_seq) else {
        return;
    };
    let ids: Vec<String> = entries
        .iter()
        .map(|e| e.get("task").map(task_id).unwrap_or_default())
        .collect();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); entries.len()];
    for (i, e) in entries.iter().enumerate() {
        let Some(list) = e.get("dependsOn").and_then(Node::as_seq) else {
            continue;
        };
        for (j, d) in list.iter().enumerate() {
            let name = d.scalar_text().unwrap_or_default();
            match ids.iter().position(|x| *x == name) {
                Some(k) => deps[i].push(k),
                None => {
                    let hint =
                        crate::diagnostic::did_you_mean(&name, ids.iter().map(String::as_str))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                    c.error(
                        d.pos,
                        &path.key("tasks").index(i).key("dependsOn").index(j),
                        format!(
                            "{}: dependsOn `{name}` is not a task of this Dag{hint}",
                            task_id(node)
                        ),
                    );
                }
            }
        }
    }
    // Tasks on a cycle: repeatedly remove tasks whose dependencies are all removed.
    let mut done = vec![false; entries.len()];
    loop {
        let mut progressed = false;
        for i in 0..entries.len() {
            if !done[i] && deps[i].iter().all(|d| done[*d]) {
                done[i] = true;
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    let cyclic: Vec<&str> = ids
        .iter()
        .zip(&done)
        .filter(|(_, d)| !**d)
        .map(|(id, _)| id.as_str())
        .collect();
    if !cyclic.is_empty() {
        c.error(
            node.pos,
            &path.key("tasks"),
            format!(
                "{}: Cyclic dependency detected: {}",
                task_id(node),
                cyclic.join(", ")
            ),
        );
    }
}

fn check_input(c: &mut Checker<'_>, node: &Node, path: &FieldPath) {
    let ty = node
        .get("type")
        .and_then(Node::scalar_text)
        .unwrap_or_default();
    let id = node
        .get("id")
        .or_else(|| node.get("name"))
        .and_then(Node::scalar_text);
    match (node.get("id"), node.get("name")) {
        (None, None) => c.error(
            node.pos,
            &path.key("id"),
            "must not be null (required property `id` is missing)",
        ),
        (Some(_), Some(n)) => c.error(
            n.pos,
            &path.key("name"),
            "an input has either an `id` or a legacy `name`, not both",
        ),
        _ => {}
    }
    let id = id.unwrap_or_default();
    if ty == "FILE"
        && let Some((k, v)) = node.entry("defaults")
        && v.value != Value::Null
    {
        c.error(
            k.pos,
            &path.key("defaults"),
            format!("{id}: no `defaults` can be set for inputs of type 'FILE'"),
        );
    }
    if ty == "ARRAY"
        && let Some(item) = node.get("itemType")
        && item.scalar_text().as_deref() == Some("ARRAY")
    {
        c.error(
            item.pos,
            &path.key("itemType"),
            format!("{id}: `itemType` cannot be `ARRAY`"),
        );
    }
    if matches!(ty.as_str(), "SELECT" | "MULTISELECT")
        && node.get("values").is_none()
        && node.get("expression").is_none()
        && node.get("options").is_none()
    {
        c.error(
            node.pos,
            &path.key("values"),
            format!("{id}: a {ty} input needs `values` (or an `expression` that gives them)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_registry_has_no_clashes() {
        let mut r = Registry::empty();
        r.set_common(Category::Task, task_common(), None);
        let all = task_types()
            .into_iter()
            .chain(trigger_types())
            .chain(condition_types())
            .chain(input_types())
            .chain(retry_types())
            .chain(sla_types());
        for def in all {
            r.register(def).unwrap();
        }
    }

    #[test]
    fn legacy_aliases_resolve() {
        let r = Registry::core();
        assert_eq!(
            r.canonical_task_type("io.kestra.core.tasks.log.Log"),
            "io.kestra.plugin.core.log.Log"
        );
        assert_eq!(
            r.canonical_task_type("io.kestra.core.tasks.flows.Flow"),
            "io.kestra.plugin.core.flow.Subflow"
        );
        assert_eq!(
            r.canonical_task_type("io.kestra.core.tasks.executions.Fail"),
            "io.kestra.plugin.core.execution.Fail"
        );
        assert!(
            r.get(
                Category::Condition,
                "io.kestra.core.models.conditions.types.ExecutionFlowCondition"
            )
            .is_some()
        );
        assert!(
            r.get(
                Category::Trigger,
                "io.kestra.core.models.triggers.types.Schedule"
            )
            .is_some()
        );
    }
}
