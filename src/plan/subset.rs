//! Subsetting: a slice of the source that follows foreign keys, so that it
//! restores with every key satisfied.
//!
//! ```text
//!            roots: public.customers "id % 100 = 0"
//!
//!   countries ◄──── customers ◄──── orders ◄──── order_items ────► products
//!   (ancestor)      (root)          (descendant)  (descendant)      (ancestor)
//!                      ▲
//!                      └──── events (descendant, through a virtual key)
//!   settings, currencies... no path to a root: kept whole
//! ```
//!
//! - **Roots**: the rows of a root table that match its condition (or a
//!   deterministic sample of them).
//! - **Descendants**: a table that refers to a root, directly or through a
//!   chain of foreign keys, keeps the rows that refer to kept rows of that
//!   chain, down to the fixed point (a self-reference follows the chain).
//! - **Ancestors**: every row a kept row refers to is kept, whatever table
//!   it is in, transitively. A row kept only as an ancestor does not bring
//!   its other children: a product keeps none of the orders that bought it.
//! - **Whole**: a table with no path to a root, and not referred to by a
//!   subset table, is kept whole; the rows it refers to in a subset table
//!   are kept as ancestors.
//!
//! It all happens in the one exported snapshot, inside each table's `COPY`:
//! every set is a common table expression of the query (recursive for a
//! self-reference or a cycle), computed by the server, so the tool holds no
//! key set in memory whatever the tables' sizes, and every worker sees the
//! same slice. The same data and rules give the same slice, in heap order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::rules::{self, Origin, Problem, RootRule, SubsetRules};
use crate::source::catalog::{Catalog, ForeignKey, Table};
use crate::sql;

/// A foreign key between two leaf tables whose rows are dumped.
#[derive(Debug, Clone)]
struct Edge {
    child: u32,
    parent: u32,
    fk: Vec<String>,
    refs: Vec<String>,
    /// The key's name (or `virtual: ...`).
    name: String,
}

/// How a table's rows are chosen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Reach {
    /// A root: its condition, and descendants' paths when it has some.
    Root { condition: String },
    /// Rows referring to kept rows of these tables (through these keys).
    Descendant { via: Vec<String> },
    /// Rows kept rows refer to (from these tables, through these keys).
    Ancestor { via: Vec<String> },
    /// No path to a root: every row.
    Whole,
}

impl Reach {
    pub fn describe(&self) -> String {
        match self {
            Reach::Root { condition } => format!("root: {condition}"),
            Reach::Descendant { via } => format!("descendant: refers to kept rows through {}", via.join(", ")),
            Reach::Ancestor { via } => format!("ancestor: referred to by kept rows through {}", via.join(", ")),
            Reach::Whole => "whole: no path to a root".to_string(),
        }
    }
}

/// The checked subset: how each dumped leaf table's rows are chosen, and
/// the SQL that chooses them.
#[derive(Debug, Clone, Default)]
pub struct SubsetPlan {
    /// Per leaf table oid with rows.
    pub reach: HashMap<u32, Reach>,
    /// `WITH RECURSIVE` list of every set, for every subset table's query.
    ctes: String,
    /// The CTE naming each subset table's kept rows.
    kept: HashMap<u32, String>,
    /// The roots as written, for the manifest: (table, condition).
    pub roots: Vec<(String, String)>,
}

/// Adds the virtual foreign keys to the catalog, as declared ones: they
/// carry mask propagation and the subset alike. Unknown tables and columns
/// are problems.
pub fn add_virtual_keys(catalog: &mut Catalog, subset: &SubsetRules) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (vk, origin) in &subset.virtual_keys {
        let from = resolve(catalog, &vk.from_table, &vk.from_columns, origin, &mut problems);
        let to = resolve(catalog, &vk.to_table, &vk.to_columns, origin, &mut problems);
        if let (Some(from), Some(to)) = (from, to) {
            let name = format!(
                "virtual {}({}) -> {}({})",
                vk.from_table,
                vk.from_columns.join(", "),
                vk.to_table,
                vk.to_columns.join(", ")
            );
            catalog.foreign_keys.push(ForeignKey {
                name,
                table: from,
                references: to,
                columns: vk.from_columns.clone(),
                ref_columns: vk.to_columns.clone(),
            });
        }
    }
    problems
}

/// The oid of a table named in the rules, with these columns.
fn resolve(
    catalog: &Catalog,
    table: &str,
    columns: &[String],
    origin: &Origin,
    problems: &mut Vec<Problem>,
) -> Option<u32> {
    let (schema, name) = match rules::split_table_name(table) {
        Ok(x) => x,
        Err(e) => {
            problems.push(origin.problem(e.0));
            return None;
        }
    };
    let Some(t) = catalog.tables.iter().find(|t| t.schema == schema && t.name == name) else {
        problems.push(origin.problem(format!("table {schema}.{name} does not exist in the source database")));
        return None;
    };
    for c in columns {
        if !t.columns.iter().any(|col| &col.name == c) {
            problems.push(origin.problem(format!("column {}.{c} does not exist", t.display_name())));
        }
    }
    Some(t.oid)
}

impl SubsetPlan {
    /// Plans the subset over the leaf tables whose rows are dumped.
    pub fn build(subset: &SubsetRules, catalog: &Catalog, dumped: &HashSet<u32>) -> Result<SubsetPlan, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut seeds: HashMap<u32, String> = HashMap::new();
        let mut roots = Vec::new();
        for (table, rule, origin) in &subset.roots {
            let Some(oid) = resolve(catalog, table, &[], origin, &mut problems) else { continue };
            let leaves: Vec<u32> = catalog.descendants(oid).into_iter().filter(|o| dumped.contains(o)).collect();
            if leaves.is_empty() {
                problems
                    .push(origin.problem(format!("root {table}: its rows are not dumped (rows: skip, or left out)")));
            }
            for leaf in leaves {
                let Some(t) = catalog.table(leaf) else { continue };
                let condition = match rule {
                    RootRule::Where(w) if w.trim().is_empty() => {
                        problems.push(origin.problem(format!("root {table}: the condition is empty")));
                        continue;
                    }
                    RootRule::Where(w) => format!("({w})"),
                    RootRule::Percent(p) => percent_condition(catalog, t, *p),
                };
                seeds.entry(leaf).and_modify(|c| *c = format!("{c} OR {condition}")).or_insert(condition);
            }
            roots.push((
                table.clone(),
                match rule {
                    RootRule::Where(w) => w.clone(),
                    RootRule::Percent(p) => format!("{p}% of the rows"),
                },
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let edges = edges(catalog, dumped);
        let mut plan = SubsetPlan { roots, ..SubsetPlan::default() };
        plan.classify(catalog, dumped, &seeds, &edges);
        plan.write_sets(catalog, &seeds, &edges);
        Ok(plan)
    }

    /// Which tables are descendants, ancestors or whole, and through what.
    fn classify(&mut self, catalog: &Catalog, dumped: &HashSet<u32>, seeds: &HashMap<u32, String>, edges: &[Edge]) {
        let name = |oid: u32| catalog.table(oid).map(Table::display_name).unwrap_or_default();
        let down = fixpoint(seeds.keys().copied().collect(), |set| {
            edges.iter().filter(|e| set.contains(&e.parent)).map(|e| e.child).collect()
        });
        let sub =
            fixpoint(down.clone(), |set| edges.iter().filter(|e| set.contains(&e.child)).map(|e| e.parent).collect());
        for &oid in dumped {
            let via_down: Vec<String> = edges
                .iter()
                .filter(|e| e.child == oid && down.contains(&e.parent) && e.parent != oid)
                .map(|e| format!("{} ({})", name(e.parent), e.name))
                .collect();
            let via_up: Vec<String> = edges
                .iter()
                .filter(|e| e.parent == oid && sub.contains(&e.child) && e.child != oid)
                .map(|e| format!("{} ({})", name(e.child), e.name))
                .collect();
            let reach = if let Some(condition) = seeds.get(&oid) {
                Reach::Root { condition: condition.clone() }
            } else if down.contains(&oid) {
                Reach::Descendant { via: sorted(via_down) }
            } else if sub.contains(&oid) {
                Reach::Ancestor { via: sorted(via_up) }
            } else {
                Reach::Whole
            };
            self.reach.insert(oid, reach);
        }
    }

    /// Whether the table's rows are a subset (not whole).
    pub fn is_subset(&self, oid: u32) -> bool {
        self.kept.contains_key(&oid)
    }

    /// The `COPY` that reads a subset table's kept rows (in heap order),
    /// further filtered by `filter` (a rules file's `where:`); `None` for a
    /// table read whole.
    pub fn copy_sql(&self, t: &Table, filter: Option<&str>) -> Option<String> {
        let kept = self.kept.get(&t.oid)?;
        let cols: Vec<String> = t.copy_columns().iter().map(|c| sql::ident(c)).collect();
        let filter = filter.map(|f| format!(" AND ({f})")).unwrap_or_default();
        Some(format!(
            "COPY ({} SELECT {} FROM ONLY {} WHERE ctid IN (SELECT scrubsnap_ctid FROM {kept}){filter} ORDER BY ctid) TO STDOUT",
            self.ctes,
            cols.join(", "),
            t.qualified()
        ))
    }

    /// A query counting a subset table's kept rows.
    pub fn count_sql(&self, t: &Table) -> Option<String> {
        let kept = self.kept.get(&t.oid)?;
        Some(format!("{} SELECT count(*) FROM {kept}", self.ctes))
    }

    /// The sets, as common table expressions: first D (rows reached going
    /// down from the roots), parents before children; then K (every kept
    /// row: D and the ancestors of kept rows), children before parents.
    fn write_sets(&mut self, catalog: &Catalog, seeds: &HashMap<u32, String>, edges: &[Edge]) {
        let down: BTreeSet<u32> = self
            .reach
            .iter()
            .filter(|(_, r)| matches!(r, Reach::Root { .. } | Reach::Descendant { .. }))
            .map(|(o, _)| *o)
            .collect();
        let sub: BTreeSet<u32> =
            self.reach.iter().filter(|(_, r)| !matches!(r, Reach::Whole)).map(|(o, _)| *o).collect();
        if sub.is_empty() {
            return;
        }
        let whole: BTreeSet<u32> = self.reach.keys().filter(|o| !sub.contains(o)).copied().collect();
        let mut ctes = Vec::new();
        let w = Writer { catalog, edges };
        // D: over the down tables, parents first.
        let down_edges: Vec<&Edge> =
            edges.iter().filter(|e| down.contains(&e.child) && down.contains(&e.parent)).collect();
        ctes.extend(down_sets(&w, &down, &down_edges, seeds));
        // K: over all subset tables, children first. A child whose kept rows
        // are exactly its descendants, reached through one key alone, refers
        // only to rows its parent keeps already: that key adds nothing to
        // the parent's set, and is left out (the parent's set is then often
        // its descendants too, and so on up).
        let sub_edges: Vec<&Edge> =
            edges.iter().filter(|e| sub.contains(&e.child) && sub.contains(&e.parent)).collect();
        let only_down_edge = |c: u32| -> Option<&Edge> {
            let ds: Vec<&&Edge> = down_edges.iter().filter(|e| e.child == c).collect();
            match (ds.as_slice(), seeds.contains_key(&c)) {
                ([e], false) if e.parent != c => Some(e),
                _ => None,
            }
        };
        let mut pure: HashSet<u32> = HashSet::new();
        for scc in ordered_sccs(&sub, &sub_edges, false) {
            let inner: Vec<&Edge> =
                sub_edges.iter().filter(|e| scc.contains(&e.child) && scc.contains(&e.parent)).copied().collect();
            let contributions = |t: u32| -> Vec<&Edge> {
                sub_edges
                    .iter()
                    .filter(|e| e.parent == t && !scc.contains(&e.child))
                    .filter(|e| {
                        let redundant = pure.contains(&e.child)
                            && only_down_edge(e.child)
                                .is_some_and(|d| d.parent == t && d.fk == e.fk && d.refs == e.refs);
                        !redundant
                    })
                    .copied()
                    .collect()
            };
            let whole = &whole;
            let whole_children = move |t: u32| edges.iter().filter(move |e| e.parent == t && whole.contains(&e.child));
            if let [t] = scc.as_slice() {
                if inner.is_empty()
                    && down.contains(t)
                    && contributions(*t).is_empty()
                    && whole_children(*t).next().is_none()
                {
                    pure.insert(*t);
                    ctes.push(format!("k_{t} AS (SELECT * FROM d_{t})"));
                    continue;
                }
            }
            let external = |t: u32| {
                let mut conds = Vec::new();
                if down.contains(&t) {
                    conds.push(format!("x.ctid IN (SELECT scrubsnap_ctid FROM d_{t})"));
                }
                for e in contributions(t) {
                    conds.push(format!(
                        "({}) IN (SELECT {} FROM k_{} y)",
                        w.cols("x", &e.refs),
                        w.cols("y", &e.fk),
                        e.child
                    ));
                }
                for e in whole_children(t) {
                    let child = catalog.table(e.child).map(Table::qualified).unwrap_or_default();
                    conds.push(format!(
                        "({}) IN (SELECT {} FROM ONLY {child} y)",
                        w.cols("x", &e.refs),
                        w.cols("y", &e.fk)
                    ));
                }
                conds
            };
            ctes.extend(w.set("k", &scc, &inner, external, Direction::Up));
        }
        self.ctes = format!("WITH RECURSIVE {}", ctes.join(",\n"));
        self.kept = sub.iter().map(|o| (*o, format!("k_{o}"))).collect();
    }
}

/// The D sets (rows reached going down from the roots), parents first:
/// a table's rows are its seeds' and those whose key is in a parent's set.
fn down_sets(w: &Writer<'_>, down: &BTreeSet<u32>, down_edges: &[&Edge], seeds: &HashMap<u32, String>) -> Vec<String> {
    let mut ctes = Vec::new();
    for scc in ordered_sccs(down, down_edges, true) {
        let external = |t: u32| {
            let mut conds: Vec<String> = seeds.get(&t).cloned().into_iter().collect();
            for e in down_edges.iter().filter(|e| e.child == t && !scc.contains(&e.parent)) {
                conds.push(format!(
                    "({}) IN (SELECT {} FROM d_{} y)",
                    w.cols("x", &e.fk),
                    w.cols("y", &e.refs),
                    e.parent
                ));
            }
            conds
        };
        let inner: Vec<&Edge> =
            down_edges.iter().filter(|e| scc.contains(&e.child) && scc.contains(&e.parent)).copied().collect();
        ctes.extend(w.set("d", &scc, &inner, external, Direction::Down));
    }
    ctes
}

impl SubsetPlan {
    /// Checks, before any row is read, that every root's condition and
    /// every table's query is valid SQL on the source (the planner parses
    /// and binds them; nothing runs): an unknown column or a syntax error in
    /// a condition is a problem at the root's position in the rules.
    pub async fn validate(
        &self,
        client: &tokio_postgres::Client,
        subset: &SubsetRules,
        catalog: &Catalog,
    ) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        for (table, rule, origin) in &subset.roots {
            let (RootRule::Where(condition), Ok((schema, name))) = (rule, rules::split_table_name(table)) else {
                continue;
            };
            let Some(t) = catalog.tables.iter().find(|t| t.schema == schema && t.name == name) else { continue };
            let sql = format!("EXPLAIN SELECT 1 FROM ONLY {} x WHERE ({condition})", t.qualified());
            if let Err(e) = client.batch_execute(&sql).await {
                problems.push(origin.problem(format!(
                    "root {table}: the condition is not valid SQL on that table: {}",
                    crate::conn::describe_pg_error(&e)
                )));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        for t in catalog.tables.iter().filter(|t| self.is_subset(t.oid)) {
            let Some(count) = self.count_sql(t) else { continue };
            if let Err(e) = client.batch_execute(&format!("EXPLAIN {count}")).await {
                problems.push(Problem {
                    file: "subset".into(),
                    line: None,
                    column: None,
                    message: format!(
                        "the slice of {} cannot be planned: {}",
                        t.display_name(),
                        crate::conn::describe_pg_error(&e)
                    ),
                });
            }
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(problems),
        }
    }

    /// Every dumped table with how its rows are chosen, the planner's row
    /// estimate and (for a subset table) the exact number of rows kept.
    pub async fn counts(
        &self,
        client: &tokio_postgres::Client,
        catalog: &Catalog,
    ) -> Result<Vec<SubsetTable>, tokio_postgres::Error> {
        let mut out = Vec::new();
        let mut tables: Vec<&Table> = catalog.tables.iter().filter(|t| self.reach.contains_key(&t.oid)).collect();
        tables.sort_by_key(|t| t.display_name());
        for t in tables {
            let kept = match self.count_sql(t) {
                Some(sql) => {
                    let row = client.query_one(&sql, &[]).await?;
                    row.try_get::<_, i64>(0).ok().map(|n| n.max(0) as u64)
                }
                None => None,
            };
            out.push(SubsetTable {
                table: t.display_name(),
                reach: self.reach[&t.oid].clone(),
                estimated_rows: t.estimated_rows.max(0) as u64,
                kept_rows: kept,
            });
        }
        Ok(out)
    }
}

/// One table of a subset, as `check` and `create --dry-run` print it and
/// the manifest records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsetTable {
    pub table: String,
    pub reach: Reach,
    /// The planner's estimate of the table's rows.
    pub estimated_rows: u64,
    /// Rows kept (exact); `None` for a table kept whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_rows: Option<u64>,
}

/// Which way a set follows the keys inside a cycle.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// From a kept parent row to the child rows referring to it.
    Down,
    /// From a kept child row to the parent row it refers to.
    Up,
}

/// Writes the common table expressions of one set kind.
struct Writer<'a> {
    catalog: &'a Catalog,
    edges: &'a [Edge],
}

impl Writer<'_> {
    /// `alias."a", alias."b"`.
    fn cols(&self, alias: &str, cols: &[String]) -> String {
        cols.iter().map(|c| format!("{alias}.{}", sql::ident(c))).collect::<Vec<_>>().join(", ")
    }

    /// The columns of `t` that any key uses, as the sets carry them.
    fn key_columns(&self, t: u32) -> Vec<String> {
        let mut cols: Vec<String> = Vec::new();
        for e in self.edges {
            if e.child == t {
                cols.extend(e.fk.iter().cloned());
            }
            if e.parent == t {
                cols.extend(e.refs.iter().cloned());
            }
        }
        cols.sort();
        cols.dedup();
        cols
    }

    fn table(&self, t: u32) -> String {
        self.catalog.table(t).map(Table::qualified).unwrap_or_default()
    }

    /// `SELECT x.ctid AS scrubsnap_ctid, x."a", ... FROM ONLY t x`.
    fn select(&self, t: u32, alias: &str) -> String {
        let mut cols = vec![format!("{alias}.ctid AS scrubsnap_ctid")];
        cols.extend(self.key_columns(t).iter().map(|c| format!("{alias}.{}", sql::ident(c))));
        format!("SELECT {} FROM ONLY {} {alias}", cols.join(", "), self.table(t))
    }

    /// The CTEs `<kind>_<oid>` of one strongly connected component: plain,
    /// recursive over self-references, or recursive over several tables.
    fn set(
        &self,
        kind: &str,
        scc: &[u32],
        inner: &[&Edge],
        external: impl Fn(u32) -> Vec<String>,
        direction: Direction,
    ) -> Vec<String> {
        let condition = |conds: Vec<String>| if conds.is_empty() { "false".to_string() } else { conds.join(" OR ") };
        if let [t] = scc {
            let t = *t;
            let base = format!("{} WHERE {}", self.select(t, "x"), condition(external(t)));
            if inner.is_empty() {
                return vec![format!("{kind}_{t} AS MATERIALIZED ({base})")];
            }
            // A self-reference: follow it to the fixed point.
            let joins: Vec<String> = inner
                .iter()
                .map(|e| match direction {
                    Direction::Down => format!("({}) = ({})", self.cols("x", &e.fk), self.cols("r", &e.refs)),
                    Direction::Up => format!("({}) = ({})", self.cols("x", &e.refs), self.cols("r", &e.fk)),
                })
                .collect();
            return vec![format!(
                "{kind}_{t} AS (WITH RECURSIVE r AS ({base} UNION {} JOIN r ON {}) SELECT * FROM r)",
                self.select(t, "x"),
                joins.join(" OR ")
            )];
        }
        // Several tables in a cycle: one recursion over (table, row).
        let index: HashMap<u32, usize> = scc.iter().enumerate().map(|(i, t)| (*t, i)).collect();
        let mut seeds = Vec::new();
        for (i, t) in scc.iter().enumerate() {
            seeds.push(format!("SELECT {i}, x.ctid FROM ONLY {} x WHERE {}", self.table(*t), condition(external(*t))));
        }
        let mut steps = Vec::new();
        for e in inner {
            let (from, to, from_cols, to_cols) = match direction {
                Direction::Down => (e.parent, e.child, &e.refs, &e.fk),
                Direction::Up => (e.child, e.parent, &e.fk, &e.refs),
            };
            steps.push(format!(
                "SELECT {}, y.ctid FROM ONLY {} x JOIN ONLY {} y ON ({}) = ({}) WHERE r.tbl = {} AND x.ctid = r.c",
                index[&to],
                self.table(from),
                self.table(to),
                self.cols("y", to_cols),
                self.cols("x", from_cols),
                index[&from]
            ));
        }
        let name = format!("{kind}_scc_{}", scc[0]);
        let mut out = vec![format!(
            "{name}(tbl, c) AS ({} UNION SELECT n.tbl, n.c FROM {name} r, LATERAL ({}) n(tbl, c))",
            seeds.join(" UNION "),
            steps.join(" UNION ALL ")
        )];
        for (i, t) in scc.iter().enumerate() {
            out.push(format!(
                "{kind}_{t} AS MATERIALIZED ({} WHERE x.ctid IN (SELECT c FROM {name} WHERE tbl = {i}))",
                self.select(*t, "x")
            ));
        }
        out
    }
}

/// A set grown by `step` until it stops growing.
fn fixpoint(mut set: BTreeSet<u32>, step: impl Fn(&BTreeSet<u32>) -> Vec<u32>) -> BTreeSet<u32> {
    loop {
        let before = set.len();
        let next = step(&set);
        set.extend(next);
        if set.len() == before {
            return set;
        }
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// Every foreign key between two dumped leaf tables (a key declared on a
/// partitioned table binds each of its leaves).
fn edges(catalog: &Catalog, dumped: &HashSet<u32>) -> Vec<Edge> {
    let mut out = Vec::new();
    for fk in &catalog.foreign_keys {
        for child in catalog.descendants(fk.table).into_iter().filter(|o| dumped.contains(o)) {
            for parent in catalog.descendants(fk.references).into_iter().filter(|o| dumped.contains(o)) {
                out.push(Edge {
                    child,
                    parent,
                    fk: fk.columns.clone(),
                    refs: fk.ref_columns.clone(),
                    name: fk.name.clone(),
                });
            }
        }
    }
    out
}

/// The strongly connected components of `nodes` under `edges` (child →
/// parent), in an order where a component comes after those it depends
/// on: parents first when `parents_first`, else children first.
fn ordered_sccs(nodes: &BTreeSet<u32>, edges: &[&Edge], parents_first: bool) -> Vec<Vec<u32>> {
    // Tarjan's algorithm yields components in reverse topological order of
    // the edges' direction (child → parent): parents come out first.
    let mut adjacency: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for e in edges {
        adjacency.entry(e.child).or_default().push(e.parent);
    }
    struct State {
        index: HashMap<u32, usize>,
        low: HashMap<u32, usize>,
        on_stack: HashSet<u32>,
        stack: Vec<u32>,
        next: usize,
        out: Vec<Vec<u32>>,
    }
    fn visit(v: u32, adjacency: &BTreeMap<u32, Vec<u32>>, s: &mut State) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in adjacency.get(&v).map(Vec::as_slice).unwrap_or_default() {
            if !s.index.contains_key(&w) {
                visit(w, adjacency, s);
                let lw = s.low[&w];
                let lv = s.low[&v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(&w) {
                let iw = s.index[&w];
                let lv = s.low[&v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[&v] == s.index[&v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                scc.push(w);
                if w == v {
                    break;
                }
            }
            scc.sort();
            s.out.push(scc);
        }
    }
    let mut s = State {
        index: HashMap::new(),
        low: HashMap::new(),
        on_stack: HashSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for &v in nodes {
        if !s.index.contains_key(&v) {
            visit(v, &adjacency, &mut s);
        }
    }
    if !parents_first {
        s.out.reverse();
    }
    s.out
}

/// A deterministic sample of about `percent` of a table's rows: a hash of
/// the primary key (or of the whole row, without one), the same every run
/// for the same row.
fn percent_condition(catalog: &Catalog, t: &Table, percent: f64) -> String {
    let mut pk: Vec<&String> = t
        .columns
        .iter()
        .map(|c| &c.name)
        .filter(|c| catalog.primary_columns.contains(&(t.oid, (*c).clone())))
        .collect();
    pk.sort();
    let what = match pk.is_empty() {
        true => "x::text".to_string(),
        false => {
            format!("ROW({})::text", pk.iter().map(|c| format!("x.{}", sql::ident(c))).collect::<Vec<_>>().join(", "))
        }
    };
    format!("(abs(pg_catalog.hashtextextended({what}, 0)) % 1000000 < {})", (percent * 10_000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(child: u32, parent: u32) -> Edge {
        Edge { child, parent, fk: vec!["p".into()], refs: vec!["id".into()], name: format!("{child}->{parent}") }
    }

    #[test]
    fn components_come_parents_first_or_children_first() {
        // 3 -> 2 -> 1, and 4 <-> 5 (a cycle) -> 1
        let edges = [edge(3, 2), edge(2, 1), edge(4, 5), edge(5, 4), edge(5, 1)];
        let refs: Vec<&Edge> = edges.iter().collect();
        let nodes: BTreeSet<u32> = [1, 2, 3, 4, 5].into_iter().collect();
        let order = ordered_sccs(&nodes, &refs, true);
        let pos = |n: u32| order.iter().position(|s| s.contains(&n)).unwrap();
        assert!(pos(1) < pos(2) && pos(2) < pos(3) && pos(1) < pos(4));
        assert!(order.contains(&vec![4, 5]));
        let order = ordered_sccs(&nodes, &refs, false);
        let pos = |n: u32| order.iter().position(|s| s.contains(&n)).unwrap();
        assert!(pos(3) < pos(2) && pos(2) < pos(1));
    }
}
