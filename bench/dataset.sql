-- The benchmark dataset (bench/run, bench/same-output): production-like
-- values, the same in every run. psql -v n=ROWS_PER_SCALE_UNIT -f bench/dataset.sql
CREATE FUNCTION pick(arr text[], i bigint, salt int) RETURNS text IMMUTABLE LANGUAGE sql AS
  $$ SELECT arr[1 + abs(hashint8(i * 7919 + salt)::int8) % array_length(arr, 1)] $$;
CREATE FUNCTION rnd(i bigint, salt int, n int) RETURNS int IMMUTABLE LANGUAGE sql AS
  $$ SELECT (abs(hashint8(i * 104729 + salt)::int8) % n)::int $$;
CREATE TABLE customers (id bigint PRIMARY KEY, email text UNIQUE NOT NULL, first_name text, last_name text,
  phone text, street text, city text, birth_date date, notes text);
INSERT INTO customers
SELECT i, lower(f) || '.' || lower(l) || i || '@' || pick('{gmail.com,yahoo.com,outlook.com,example.org,mail.example}', i, 5), f, l,
  p, s, c, date '1950-01-01' + rnd(i, 9, 20000),
  CASE rnd(i, 10, 4) WHEN 0 THEN 'Prefers email ' || lower(f) || '.' || lower(l) || i || '@gmail.com, evenings'
                     WHEN 1 THEN 'Call ' || p || ' before noon'
                     WHEN 2 THEN 'Customer since ' || (2000 + rnd(i, 11, 24)) || ', ' || pick('{loyal,occasional,new,returning}', i, 12)
                     ELSE NULL END
FROM (SELECT i,
  pick('{James,Mary,Robert,Patricia,John,Jennifer,Michael,Linda,David,Elizabeth,William,Barbara,Richard,Susan,Joseph,Jessica,Thomas,Sarah,Charles,Karen,Christopher,Lisa,Daniel,Nancy,Matthew,Betty,Anthony,Margaret,Mark,Sandra,Donald,Ashley,Steven,Kimberly,Paul,Emily,Andrew,Donna,Joshua,Michelle,Kenneth,Carol,Kevin,Amanda,Brian,Melissa,George,Deborah,Timothy,Stephanie,Ronald,Rebecca,Jason,Sharon,Edward,Laura,Jeffrey,Cynthia,Ryan,Dorothy,Jacob,Amy,Gary,Kathleen,Nicholas,Angela,Eric,Shirley,Jonathan,Emma,Stephen,Brenda,Larry,Pamela,Justin,Nicole,Scott,Anna,Brandon,Samantha,Benjamin,Katherine,Samuel,Christine,Gregory,Debra,Alexander,Rachel,Patrick,Carolyn,Frank,Janet,Raymond,Maria,Jack,Olivia,Dennis,Heather,Jerry,Helen}', i, 1) f,
  pick('{Smith,Johnson,Williams,Brown,Jones,Garcia,Miller,Davis,Rodriguez,Martinez,Hernandez,Lopez,Gonzalez,Wilson,Anderson,Thomas,Taylor,Moore,Jackson,Martin,Lee,Perez,Thompson,White,Harris,Sanchez,Clark,Ramirez,Lewis,Robinson,Walker,Young,Allen,King,Wright,Scott,Torres,Nguyen,Hill,Flores,Green,Adams,Nelson,Baker,Hall,Rivera,Campbell,Mitchell,Carter,Roberts,Gomez,Phillips,Evans,Turner,Diaz,Parker,Cruz,Edwards,Collins,Reyes,Stewart,Morris,Morales,Murphy,Cook,Rogers,Gutierrez,Ortiz,Morgan,Cooper,Peterson,Bailey,Reed,Kelly,Howard,Ramos,Kim,Cox,Ward,Richardson,Watson,Brooks,Chavez,Wood,James,Bennett,Gray,Mendoza,Ruiz,Hughes,Price,Alvarez,Castillo,Sanders,Patel,Myers,Long,Ross,Foster,Jimenez}', i, 2) l,
  '+1 (' || (200 + rnd(i, 3, 800)) || ') ' || lpad(rnd(i, 4, 1000)::text, 3, '0') || '-' || lpad(rnd(i, 6, 10000)::text, 4, '0') p,
  (1 + rnd(i, 7, 9999)) || ' ' || pick('{Oak,Maple,Cedar,Pine,Elm,Washington,Lake,Hill,Park,Main,Church,High,Sunset,River,Spring,Meadow,Forest,Highland,Jackson,Lincoln}', i, 8) || ' ' || pick('{Street,Avenue,Road,Boulevard,Lane,Drive,Court}', i, 13) s,
  pick('{New York,Los Angeles,Chicago,Houston,Phoenix,Philadelphia,San Antonio,San Diego,Dallas,San Jose,Austin,Jacksonville,Fort Worth,Columbus,Charlotte,Indianapolis,San Francisco,Seattle,Denver,Nashville,Oklahoma City,El Paso,Boston,Portland,Las Vegas,Detroit,Memphis,Louisville,Baltimore,Milwaukee}', i, 14) c
  FROM generate_series(1, :n) i) g;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers, total numeric(12,2), status text,
  ordered_at timestamptz, shipping jsonb);
INSERT INTO orders SELECT i, 1 + rnd(i, 20, :n), rnd(i, 21, 50000) / 100.0, pick('{paid,paid,paid,shipped,shipped,delivered,delivered,delivered,new,cancelled}', i, 22),
  timestamptz '2024-01-01' + i * interval '1 minute' + rnd(i, 23, 60) * interval '1 second',
  jsonb_build_object('street', (1 + rnd(i, 24, 9999)) || ' ' || pick('{Oak,Maple,Cedar,Pine,Elm,Washington,Lake,Hill,Park,Main}', i, 25) || ' Street',
                     'zip', lpad(rnd(i, 26, 99999)::text, 5, '0'), 'city', pick('{New York,Chicago,Houston,Phoenix,Dallas,Austin,Seattle,Denver,Boston}', i, 27))
FROM generate_series(1, 3 * :n) i;
CREATE TABLE order_items (order_id bigint REFERENCES orders, line int, sku text, qty int, price numeric(10,2), PRIMARY KEY (order_id, line));
INSERT INTO order_items SELECT 1 + i / 3, i % 3, 'SKU-' || rnd(i, 30, 5000), 1 + rnd(i, 31, 5), rnd(i, 32, 9000) / 10.0 FROM generate_series(0, 9 * :n - 1) i;
CREATE TABLE events (id bigserial PRIMARY KEY, customer_id bigint, kind text, payload text, at timestamptz);
INSERT INTO events (customer_id, kind, payload, at) SELECT 1 + rnd(i, 40, :n), pick('{view,view,view,click,click,search,add_to_cart,checkout}', i, 41),
  '{"path": "/products/' || rnd(i, 42, 5000) || '", "referrer": "' || pick('{google,direct,newsletter,facebook,partner}', i, 43) || '", "session": "' || md5(i::text) || '"}',
  timestamptz '2024-01-01' + i * interval '1 second' FROM generate_series(1, 5 * :n) i;
DROP FUNCTION pick(text[], bigint, int); DROP FUNCTION rnd(bigint, int, int);
VACUUM ANALYZE;
