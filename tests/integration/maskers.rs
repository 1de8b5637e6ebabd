//! Masking what real schemas hold beyond plain columns: arrays of any
//! maskable type, hstore values by key, composite fields by name, and
//! people whose parts hang together, end to end against the real server.

use std::path::Path;

use crate::harness::{cluster, scrubsnap_env, store_dir, Run};

const KEY: &str = "containers-test-key-0123456789abcdef";

const SCHEMA: &str = r#"
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE TYPE address AS (street text, city varchar(40), zip text);
CREATE TABLE users (
  id int PRIMARY KEY,
  first_name text NOT NULL,
  last_name text NOT NULL,
  email text NOT NULL UNIQUE,
  username varchar(40) NOT NULL UNIQUE,
  emails text[],
  phones varchar(20)[][],
  devices uuid[] UNIQUE,
  nets inet[],
  attrs hstore,
  home address,
  contact text UNIQUE,
  CHECK (array_ndims(phones) IS NULL OR array_ndims(phones) = 2)
);
CREATE TABLE newsletter (id int PRIMARY KEY, user_id int REFERENCES users, email text NOT NULL);
INSERT INTO users
SELECT i, 'First' || i, 'Last' || i, 'user' || i || '@corp.example', 'login' || i,
       CASE WHEN i % 5 = 0 THEN NULL ELSE ARRAY['a' || i || '@mail.example', NULL, 'b' || i || '@mail.example'] END,
       ARRAY[ARRAY['+1 555 01' || lpad((i % 100)::text, 2, '0'), NULL], ARRAY['(555) 010-' || lpad(i::text, 4, '0'), '+44 20 7946 ' || lpad(i::text, 4, '0')]],
       ARRAY[md5('d' || i)::uuid, md5('e' || i)::uuid],
       ARRAY[('10.0.' || (i % 250) || '.' || (i % 200 + 1))::inet, NULL],
       hstore(ARRAY['email', 'user' || i || '@corp.example', 'plan', CASE WHEN i % 2 = 0 THEN 'pro' ELSE 'free' END, 'phone', '+1 555 0' || lpad(i::text, 3, '0')]),
       ROW(i || ' Baker Street', 'Springfield', 'Z' || i)::address,
       'First' || i || '.Last' || i || '@corp.example'
FROM generate_series(1, 300) i;
INSERT INTO newsletter SELECT i, i, 'user' || i || '@corp.example' FROM generate_series(1, 300, 3) i;
"#;

const RULES: &str = r#"version: 1
strict: true
tables:
  public.users:
    person:
      first_name: first_name
      last_name: last_name
      email: email
      username: username
    columns:
      id: keep
      emails: email
      phones: phone
      devices: uuid
      nets: {mask: ip, keep_prefix: 16}
      attrs: {mask: hstore, keys: {email: email, phone: phone}}
      home: {mask: composite, fields: {street: street_address, zip: postal_code}}
      contact: {mask: template, template: "{first_name}.{last_name}.{tag}@example.com", from_row: true}
  public.newsletter:
    columns:
      id: keep
      user_id: keep
      email: email
"#;

fn create(src: &str, store: &Path, rules: &Path) -> Run {
    let dest = store.to_string_lossy().to_string();
    scrubsnap_env(
        &["create", "--source", src, "--dest", &dest, "--rules", &rules.to_string_lossy()],
        &[("SCRUBSNAP_KEY", KEY)],
    )
}

#[test]
fn arrays_hstore_composites_and_people_are_masked_and_restore_whole() {
    let c = cluster();
    let src = c.fresh_db("containers");
    c.psql(&src, SCHEMA);
    let dir = store_dir();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).expect("write rules");
    let store = store_dir();
    let r = create(&c.url(&src), store.path(), &rules);
    assert_eq!(r.code, 0, "create failed:\n{}", r.all());
    let id = r.stdout.trim().to_string();
    let (r, dst) = c.restore_new(store.path(), &id, "containers_dst");
    assert_eq!(
        r.code,
        0,
        "every constraint holds on restore (unique arrays and emails, the CHECK, the key):\n{}",
        r.all()
    );
    let q = |sql: &str| c.psql(&dst, sql);
    let orig = |sql: &str| c.psql(&src, sql);

    // Arrays: shape, NULL elements and NULL arrays kept, every element masked.
    assert_eq!(q("SELECT count(*) FROM users WHERE emails IS NULL"), "60");
    assert_eq!(q("SELECT count(*) FROM users WHERE emails[2] IS NULL AND emails IS NOT NULL"), "240");
    assert_eq!(q("SELECT count(*) FROM users WHERE array_dims(phones) = '[1:2][1:2]' AND phones[1][2] IS NULL"), "300");
    assert_eq!(q("SELECT count(*) FROM users WHERE cardinality(devices) = 2 AND nets[2] IS NULL"), "300");
    for column in ["emails", "phones", "devices", "nets"] {
        // Each row's elements, as "id element": none survives in its row.
        let sql = format!("SELECT id || ' ' || e::text FROM users, unnest({column}) e WHERE e IS NOT NULL");
        let before: std::collections::HashSet<String> = orig(&sql).lines().map(str::to_string).collect();
        let after = q(&sql);
        assert_eq!(after.lines().count(), before.len(), "{column}: as many non-NULL elements");
        let kept: Vec<&str> = after.lines().filter(|v| before.contains(*v)).collect();
        assert!(kept.is_empty(), "{column}: original elements in the snapshot: {kept:?}");
    }
    assert_eq!(
        q("SELECT count(*) FROM users WHERE host(nets[1])::inet << '10.0.0.0/16'"),
        "300",
        "keep_prefix per element"
    );
    // An element maps as the same value in a scalar column of the domain does.
    assert_eq!(
        q("SELECT count(*) FROM users u WHERE u.emails[1] LIKE '%@example.%'"),
        "240",
        "emails in arrays are fake addresses"
    );

    // hstore: the named keys masked, the others kept.
    assert_eq!(q("SELECT count(*) FROM users WHERE attrs->'plan' IN ('pro', 'free')"), "300");
    assert_eq!(q("SELECT count(*) FROM users WHERE attrs->'email' LIKE 'user%@corp.example'"), "0");
    assert_eq!(q("SELECT count(*) FROM users WHERE attrs->'email' = email"), "300", "same domain, same mapping");
    // Composite: named fields masked, the others kept.
    assert_eq!(q("SELECT count(*) FROM users WHERE (home).city = 'Springfield'"), "300");
    assert_eq!(q("SELECT count(*) FROM users WHERE (home).street LIKE '% Baker Street'"), "0");
    assert_eq!(
        q("SELECT count(*) FROM users WHERE (home).zip ~ '^[A-Z][0-9]+$'"),
        "300",
        "postal_code keeps the shape"
    );

    // People: one fake person per row, whose email and username carry its names.
    let mismatched = q("SELECT count(*) FROM users WHERE email NOT LIKE \
         lower(regexp_replace(first_name, '[^A-Za-z0-9]', '', 'g')) || '.' || \
         lower(regexp_replace(last_name, '[^A-Za-z0-9]', '', 'g')) || '.%' \
         OR username NOT LIKE lower(regexp_replace(first_name, '[^A-Za-z0-9]', '', 'g')) || \
         lower(regexp_replace(last_name, '[^A-Za-z0-9]', '', 'g')) || '\\_%'");
    assert_eq!(mismatched, "0", "names, email and username of each row belong to one person");
    assert_eq!(q("SELECT count(DISTINCT email) FROM users"), "300");
    // A template from the row: the masked names of the same row, and a tag
    // that keeps the unique column unique.
    assert_eq!(
        q("SELECT count(*) FROM users WHERE contact ~ ('^' || first_name || '\\.' || last_name || '\\.[a-z2-7]{13}@example\\.com$')"),
        "300",
        "{}",
        q("SELECT contact, first_name, last_name FROM users LIMIT 3")
    );
    // A copy of the email in another table still matches through its domain.
    assert_eq!(q("SELECT count(*) FROM newsletter n JOIN users u ON u.id = n.user_id WHERE n.email = u.email"), "100");

    // The same key gives the same output.
    let store2 = store_dir();
    let r = create(&c.url(&src), store2.path(), &rules);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        crate::harness::data_file_sums(store.path(), &id).into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
        crate::harness::data_file_sums(store2.path(), r.stdout.trim()).into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
        "identical data files for the same key"
    );
}

#[test]
fn rules_that_cannot_apply_to_containers_or_people_are_named() {
    let c = cluster();
    let src = c.fresh_db("containers_bad");
    c.psql(&src, SCHEMA);
    let dir = store_dir();
    let rules = dir.path().join("rules.yaml");
    let bad = RULES
        .replace("devices: uuid", "devices: first_name")
        .replace("username: username", "username: city")
        .replace("zip: postal_code", "zap: postal_code")
        .replace("phones: phone", "phones: {mask: email}")
        .replace("{last_name}.{tag}", "{nosuch}.{tag}");
    std::fs::write(&rules, &bad).expect("write rules");
    let store = store_dir();
    let r = create(&c.url(&src), store.path(), &rules);
    assert_eq!(r.code, 1, "{}", r.all());
    let err = r.all();
    for needle in [
        "public.users.devices",       // first_name cannot mask the elements of uuid[]
        "the elements of",            // said in words
        "cannot be part of a person", // city in person:
        "has no field 'zap'",         // composite field that does not exist
        "writes at least 29",         // email elements do not fit varchar(20)
        "{nosuch} is not a column",   // a from_row template names a missing column
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(!err.contains("corp.example"), "no value is printed:\n{err}");
}

#[test]
fn rules_init_suggests_the_maskers_that_fit_and_they_apply() {
    let c = cluster();
    let src = c.fresh_db("containers_init");
    c.psql(
        &src,
        "CREATE TABLE accounts (
           id int PRIMARY KEY,
           iban text, card_number text, ssn text, mac text, lat numeric(9,6), lng double precision,
           emails text[], password_digest text, location point);
         INSERT INTO accounts SELECT i,
           'DE89 3704 0044 0532 0130 00', '4111 1111 1111 1111', '123-45-' || lpad(i::text, 4, '0'),
           '00:1a:2b:3c:4d:' || lpad(to_hex(i % 256), 2, '0'), 52.37 + i / 1000.0, 4.89 + i / 1000.0,
           ARRAY['a' || i || '@corp.example', 'b' || i || '@corp.example'],
           '$2b$12$abcdefghijklmnopqrstuuIxU6zCVwGPlHgR5tu6O7DUXmyZuVZjK', point(4.89, 52.37)
         FROM generate_series(1, 200) i;",
    );
    let r = scrubsnap_env(&["rules", "init", "--source", &c.url(&src)], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for (column, masker) in [
        ("iban", "iban"),
        ("card_number", "card_number"),
        ("ssn", "national_id"),
        ("mac", "mac_address"),
        ("lat", "latitude"),
        ("lng", "longitude"),
        ("emails", "email"),
        ("password_digest", "password_hash"),
        ("location", "geo_point"),
    ] {
        let line = r.stdout.lines().find(|l| l.trim_start().starts_with(&format!("{column}:"))).unwrap_or_default();
        assert!(line.contains(masker), "{column} should get {masker}:\n{}", r.stdout);
    }
    let dir = store_dir();
    let rules = dir.path().join("init.yaml");
    std::fs::write(&rules, &r.stdout).expect("write rules");
    let store = store_dir();
    let created = create(&c.url(&src), store.path(), &rules);
    assert_eq!(created.code, 0, "the suggested rules apply:\n{}", created.all());
    let (restored, dst) = c.restore_new(store.path(), created.stdout.trim(), "containers_init_dst");
    assert_eq!(restored.code, 0, "{}", restored.all());
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM accounts WHERE iban = 'DE89 3704 0044 0532 0130 00' OR emails[1] LIKE '%corp.example'"), "0");
}
