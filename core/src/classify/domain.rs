//! Domain lexicons: the nouns that make a verb consequential in one field.
//!
//! - **Money**: billing objects (invoices, subscriptions, disputes,
//!   payouts, refunds, charges, tiers), brokerage orders and positions, and
//!   resources whose creation is billed (a database cluster, a phone
//!   number, an add-on, a database service's project or branch).
//! - **Shared systems**: the parts of infrastructure others depend on
//!   (clusters, nodes, namespaces, firewalls, load balancers, volumes,
//!   registries, production).
//! - **Forges**: a hosted repository's files and issues.
//! - **Words to people**: comments, replies and reviews.
//! - **Reads that look like writes**: what `generate` returns and what
//!   `start` begins when it only reads.
//!
//! Whole, lower-case words only, like the rest of the lexicon.

/// Billing objects: any change to them (create, update, cancel, send,
/// accept) moves money or commits to it.
pub(crate) fn is_billing_object(w: &str) -> bool {
    matches!(
        w,
        "invoice"
            | "invoices"
            | "bill"
            | "bills"
            | "subscription"
            | "subscriptions"
            | "dispute"
            | "disputes"
            | "payout"
            | "payouts"
            | "refund"
            | "refunds"
            | "charge"
            | "charges"
            | "tier"
            | "tiers"
            | "locate"
            | "locates"
    )
}

/// Words of a description that put a tool among money (`plan` is a
/// billing plan there).
pub(crate) fn is_money_context(w: &str) -> bool {
    matches!(
        w,
        "billing" | "invoice" | "invoices" | "subscription" | "subscriptions" | "payment" | "payments" | "pricing"
    )
}

/// Brokerage objects: cancelling, replacing or closing them trades.
pub(crate) fn is_position_noun(w: &str) -> bool {
    matches!(w, "order" | "orders" | "position" | "positions")
}

/// Verbs that change a brokerage order or position.
pub(crate) fn is_trading_verb(w: &str) -> bool {
    matches!(w, "cancel" | "replace" | "close" | "modify")
}

/// Resources whose creation is billed (a database cluster, a phone number).
pub(crate) fn paid_resource(object: &[&str], database: bool) -> Option<&'static str> {
    let has = |x: &str| object.contains(&x);
    Some(if has("phone") && (has("number") || has("numbers")) {
        "phone number"
    } else if has("addon") || has("addons") || object.windows(2).any(|p| p == ["add", "on"]) {
        "add-on"
    } else if has("cluster") || has("clusters") {
        "cluster"
    } else if has("droplet") || has("droplets") {
        "droplet"
    } else if has("db") {
        "database"
    } else if database && (has("project") || has("projects") || has("branch") || has("branches")) {
        "database project or branch"
    } else {
        return None;
    })
}

/// Parts of infrastructure others depend on: changing them is SUBMIT.
pub(crate) fn is_infra_noun(w: &str) -> bool {
    matches!(
        w,
        "cluster"
            | "clusters"
            | "droplet"
            | "droplets"
            | "node"
            | "nodes"
            | "nodepool"
            | "nodepools"
            | "namespace"
            | "namespaces"
            | "firewall"
            | "firewalls"
            | "lb"
            | "loadbalancer"
            | "vpc"
            | "vpcs"
            | "cdn"
            | "volume"
            | "volumes"
            | "nfs"
            | "ip"
            | "ips"
            | "registry"
            | "pod"
            | "pods"
            | "replica"
            | "replicas"
            | "dedicated"
            | "kubectl"
            | "kubernetes"
            | "k8s"
            | "helm"
            | "production"
            | "prod"
            | "maintenance"
    )
}

/// Verbs that operate a running system: on an app, a service or a
/// database (`ps_scale`, `restart_app`, `pg_upgrade`) they are SUBMIT.
pub(crate) fn is_operating_verb(w: &str) -> bool {
    matches!(
        w,
        "scale"
            | "restart"
            | "reboot"
            | "drain"
            | "rollback"
            | "upgrade"
            | "redeploy"
            | "promote"
            | "suspend"
            | "resume"
            | "resize"
            | "failover"
            | "stop"
            | "pause"
    )
}

/// What runs for others: apps, services, their processes and databases.
pub(crate) fn is_service_noun(w: &str) -> bool {
    matches!(
        w,
        "app"
            | "apps"
            | "application"
            | "applications"
            | "service"
            | "services"
            | "dyno"
            | "dynos"
            | "ps"
            | "worker"
            | "workers"
            | "database"
            | "databases"
            | "db"
            | "pg"
            | "instance"
            | "instances"
            | "server"
            | "servers"
            | "site"
            | "sites"
            | "environment"
            | "environments"
            | "cluster"
            | "clusters"
            | "deployment"
            | "deployments"
    )
}

/// What runs code when created or started (`create-container`).
pub(crate) fn is_container_noun(w: &str) -> bool {
    matches!(w, "container" | "containers" | "sandbox" | "sandboxes" | "vm" | "vms")
}

/// Hosting platforms: deleting a project, an app or a site there takes
/// down what others use.
pub(crate) fn is_hosting_context(w: &str) -> bool {
    matches!(
        w,
        "heroku" | "vercel" | "netlify" | "railway" | "render" | "fly" | "cloudflare" | "digitalocean" | "supabase"
    )
}

/// Infrastructure of a database service (on a database tool only).
pub(crate) fn is_database_infra_noun(w: &str) -> bool {
    matches!(w, "project" | "projects" | "branch" | "branches" | "migration" | "migrations")
}

/// Words that roll a shared system back or out.
pub(crate) fn is_rollout_word(w: &str) -> bool {
    matches!(w, "rollback" | "rollout" | "redeploy" | "deploy" | "promote")
}

/// Words of other people's words: comments and replies.
pub(crate) fn is_comment_noun(w: &str) -> bool {
    matches!(w, "comment" | "comments" | "reply" | "replies" | "review" | "reviews")
}

/// Verbs that change existing words (an edited comment is read again).
pub(crate) fn is_edit_verb(w: &str) -> bool {
    matches!(w, "edit" | "update" | "modify" | "change")
}

/// Hosted forges: their files and issues are seen by others.
pub(crate) fn is_forge_context(w: &str) -> bool {
    matches!(w, "github" | "gitlab" | "bitbucket" | "gitea" | "forgejo" | "repository" | "repositories")
}

/// What `generate` returns without changing anything (a QR code, a link).
pub(crate) fn is_artefact_noun(w: &str) -> bool {
    matches!(
        w,
        "image"
            | "images"
            | "qr"
            | "code"
            | "link"
            | "url"
            | "preview"
            | "thumbnail"
            | "chart"
            | "diagram"
            | "summary"
            | "types"
            | "typescript"
            | "report"
            | "embedding"
            | "embeddings"
    )
}

/// What `start` begins when it only reads (a search).
pub(crate) fn is_search_noun(w: &str) -> bool {
    matches!(w, "search" | "searches" | "query" | "scan" | "crawl" | "research" | "lookup")
}
