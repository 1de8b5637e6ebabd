//! `scrubsnap check` and `scrubsnap rules init`: the security reviewer's commands.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::ValueEnum;
use scrubsnap::conn::ProcessEnv;
use scrubsnap::leak::verdict::Verdict;
use scrubsnap::plan::{Selection, TablePatterns};
use scrubsnap::review::{self, scan, scan::Sample};
use scrubsnap::rules::Rules;
use scrubsnap::source::catalog::Catalog;
use scrubsnap::source::session::{SourceSession, Timeouts};

use super::common::connection;
use super::{Context, Failure};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 when every suspected column is masked or kept with a written reason (and, under strict, every column is covered); 1 otherwise or when the rules do not apply; 2 when the database cannot be read.\n\nExample:\n  scrubsnap check --rules rules/app.yaml --source postgresql://reviewer@db/app --format markdown > check.md"
)]
pub struct CheckArgs {
    /// The rules file to check.
    #[arg(long, value_name = "FILE", env = "SCRUBSNAP_RULES")]
    rules: PathBuf,

    /// The database to check against (read only). Falls back to DATABASE_URL, then the PG* variables.
    #[arg(long, env = "SCRUBSNAP_SOURCE", hide_env_values = true)]
    source: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, env = "SCRUBSNAP_CHECK_FORMAT")]
    format: Format,

    /// Rows sampled per table, spread over it, to look for personal data in values and for kept columns that hold masked values (0: names only). Values are never printed.
    #[arg(long, default_value_t = 200, env = "SCRUBSNAP_SAMPLE")]
    sample: u64,

    /// Run the leak analysis over every row, as create's leak scan does, instead of a sample: whatever check then passes, create on the same data publishes.
    #[arg(long, env = "SCRUBSNAP_CHECK_FULL")]
    full: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The database to describe (read only).
    #[arg(long, env = "SCRUBSNAP_SOURCE", hide_env_values = true)]
    source: Option<String>,

    /// Rows sampled per table to look for personal data in values. Values are never printed.
    #[arg(long, default_value_t = 200, env = "SCRUBSNAP_SAMPLE")]
    sample: u64,
}

async fn read_source(source: Option<&str>) -> Result<(SourceSession, Catalog), Failure> {
    let spec = connection(source, "--source")?;
    let session = SourceSession::open(&spec, &ProcessEnv, Timeouts::default()).await.map_err(Failure::runtime)?;
    let catalog = Catalog::read(&session.client).await.map_err(Failure::runtime)?;
    Ok((session, catalog))
}

pub async fn check(args: CheckArgs, _ctx: &Context) -> Result<(), Failure> {
    let rules = Rules::load(&args.rules).map_err(|e| Failure::config(anyhow!("{e}")))?;
    let (session, mut catalog) = read_source(args.source.as_deref()).await?;
    if let Some(subset) = &rules.subset {
        let problems = scrubsnap::plan::subset::add_virtual_keys(&mut catalog, subset);
        if !problems.is_empty() {
            return Err(Failure::config(anyhow!(
                "the rules cannot be applied:\n{}",
                scrubsnap::rules::RulesError(problems)
            )));
        }
    }
    let selection = Selection::build(&catalog, &TablePatterns::default().with_rules(Some(&rules)))
        .map_err(|e| Failure::config(anyhow!("the rules' rows: skip tables break foreign keys:\n{e}")))?;
    let samples =
        review::sample(&session.client, &catalog, &selection.with_rows, args.sample).await.map_err(Failure::runtime)?;
    let plan = review::plan(&rules, &catalog, &selection)
        .map_err(|e| Failure::config(anyhow!("the rules cannot be applied:\n{e}")))?;
    let sample = match (args.full, args.sample) {
        (true, _) => Sample::Full,
        (false, n) => Sample::Rows(n),
    };
    let leaks = match sample {
        Sample::Rows(0) => Verdict::default(),
        _ => scan::scan(&session.client, &catalog, &plan, &selection.with_rows, sample)
            .await
            .map_err(|e| Failure::classified(e, "the leak analysis failed"))?,
    };
    let subset = match &rules.subset {
        Some(rules_subset) => {
            let dumped = plan.dumped(&catalog, &selection.with_rows);
            let bad = |p: Vec<scrubsnap::rules::Problem>| {
                Failure::config(anyhow!("the rules cannot be applied:\n{}", scrubsnap::rules::RulesError(p)))
            };
            let subset = scrubsnap::plan::subset::SubsetPlan::build(rules_subset, &catalog, &dumped).map_err(bad)?;
            subset.validate(&session.client, rules_subset, &catalog).await.map_err(bad)?;
            subset.counts(&session.client, &catalog).await.map_err(Failure::runtime)?
        }
        None => Vec::new(),
    };
    session.close().await;
    let sampled_rows = if args.full { 0 } else { args.sample };
    let evidence = review::Evidence { samples: &samples, sampled_rows, leaks: &leaks, subset };
    let report = review::check(&rules, &plan, &catalog, evidence);
    match args.format {
        Format::Text => print!("{}", review::render_text(&report)),
        Format::Markdown => print!("{}", review::render_markdown(&report)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report).map_err(Failure::runtime)?),
    }
    if report.passed {
        Ok(())
    } else {
        let n = report.columns.iter().filter(|c| c.failure.is_some()).count();
        Err(Failure::config(anyhow!("check failed: {n} column(s) need a rule or a written reason")))
    }
}

pub async fn init(args: InitArgs, _ctx: &Context) -> Result<(), Failure> {
    let (session, catalog) = read_source(args.source.as_deref()).await?;
    let all: std::collections::HashSet<u32> = catalog.tables.iter().map(|t| t.oid).collect();
    let samples = review::sample(&session.client, &catalog, &all, args.sample).await.map_err(Failure::runtime)?;
    let database = session.database.clone();
    let sample = match args.sample {
        0 => Sample::Rows(200),
        n => Sample::Rows(n),
    };
    let text = review::init::rules(&session.client, &catalog, &samples, &database, sample)
        .await
        .map_err(|e| Failure::classified(e, "the leak analysis failed"))?;
    session.close().await;
    print!("{text}");
    Ok(())
}
