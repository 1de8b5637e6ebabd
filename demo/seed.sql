-- seed.sql: a small shop database for the scrubsnap demo (scripts/demo).
--
-- Every person, email address, phone number and street address in here is
-- INVENTED: they are built from short lists of common first names, last
-- names, streets and cities, with numbers from generate_series. Email
-- addresses use the reserved example.com / example.org / example.net
-- domains and phone numbers the fictional 555-01xx range. Any resemblance
-- to real people is a coincidence.
--
-- The data is deterministic (no random(), no now()): loading it twice gives
-- the same rows. About 200 customers, 25 products, 600 orders and 1,500
-- order items. orders.customer_email is a denormalised copy of the
-- customer's email, and orders.notes sometimes mentions an email address or
-- a phone number: both are personal data a masking rule has to find.

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET client_min_messages = warning;

CREATE TYPE public.order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded');

CREATE TABLE public.customers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email        text NOT NULL UNIQUE,
    first_name   text NOT NULL,
    last_name    text NOT NULL,
    phone        text,
    birth_date   date,
    street       text NOT NULL,
    city         text NOT NULL,
    postal_code  text NOT NULL,
    country      char(2) NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE public.customers IS 'Shop customers (personal data).';

CREATE TABLE public.products (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku         text NOT NULL UNIQUE,
    name        text NOT NULL,
    unit_price  numeric(12,2) NOT NULL CHECK (unit_price >= 0)
);

CREATE TABLE public.orders (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id       bigint NOT NULL REFERENCES public.customers (id),
    customer_email    text NOT NULL,
    status            public.order_status NOT NULL DEFAULT 'pending',
    total             numeric(12,2) NOT NULL DEFAULT 0 CHECK (total >= 0),
    ordered_at        timestamptz NOT NULL,
    shipping_address  text NOT NULL,
    notes             text
);

CREATE INDEX orders_customer_id_idx ON public.orders (customer_id);
CREATE INDEX orders_ordered_at_idx ON public.orders (ordered_at);

CREATE TABLE public.order_items (
    order_id      bigint NOT NULL REFERENCES public.orders (id) ON DELETE CASCADE,
    line_no       integer NOT NULL,
    product_id    integer NOT NULL REFERENCES public.products (id),
    product_name  text NOT NULL,
    quantity      integer NOT NULL CHECK (quantity > 0),
    unit_price    numeric(12,2) NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, line_no)
);

-- 200 customers.
INSERT INTO public.customers (email, first_name, last_name, phone, birth_date, street, city, postal_code, country, created_at)
SELECT
    lower(n.first) || '.' || lower(replace(n.last, '''', '')) || i || '@'
        || (ARRAY['example.com', 'example.org', 'example.net'])[1 + i % 3],
    n.first,
    n.last,
    CASE WHEN i % 11 = 0 THEN NULL
         ELSE '+1 (' || (200 + (i * 37) % 700) || ') 555-01' || lpad((i % 100)::text, 2, '0') END,
    DATE '1950-01-01' + (i * 997) % 19000,
    (1 + (i * 53) % 980) || ' ' || (ARRAY['Oak Street', 'Maple Avenue', 'Cedar Lane', 'Pine Road', 'Elm Street',
                                          'Birch Way', 'Willow Drive', 'Lakeview Terrace', 'Hillcrest Road', 'Park Place'])[1 + (i * 3) % 10],
    c.city,
    lpad(((i * 7919) % 90000 + 10000)::text, 5, '0'),
    c.country,
    TIMESTAMPTZ '2022-01-03 08:00:00+00' + (i - 1) * INTERVAL '2 days 3 hours 17 minutes'
FROM generate_series(1, 200) AS i
CROSS JOIN LATERAL (
    SELECT (ARRAY['James', 'Mary', 'Robert', 'Patricia', 'John', 'Jennifer', 'Michael', 'Linda', 'David', 'Elizabeth',
                  'William', 'Barbara', 'Sofia', 'Lucas', 'Emma', 'Noah', 'Olivia', 'Liam', 'Amelia', 'Mateo'])[1 + i % 20] AS first,
           (ARRAY['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
                  'Hernandez', 'Lopez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Martin', 'O''Connor', 'Nguyen',
                  'Kim', 'Schmidt', 'Rossi'])[1 + (i * 7) % 23] AS last
) n
CROSS JOIN LATERAL (
    SELECT (ARRAY['Springfield', 'Riverside', 'Franklin', 'Greenville', 'Fairview', 'Madison', 'Georgetown', 'Salem',
                  'Clinton', 'Arlington', 'Ashland', 'Dover'])[1 + (i * 5) % 12] AS city,
           (ARRAY['US', 'US', 'US', 'CA', 'GB', 'IE'])[1 + i % 6] AS country
) c
ORDER BY i;

-- 25 products.
INSERT INTO public.products (sku, name, unit_price)
SELECT 'SKU-' || lpad(i::text, 4, '0'),
       (ARRAY['Ceramic Mug', 'Cotton T-Shirt', 'Notebook', 'Desk Lamp', 'Water Bottle', 'Backpack', 'Wool Scarf',
              'Phone Case', 'Coffee Beans 1kg', 'Tea Sampler', 'Bluetooth Speaker', 'Yoga Mat', 'Scented Candle',
              'Cutting Board', 'Plant Pot', 'Sunglasses', 'Umbrella', 'Board Game', 'Jigsaw Puzzle', 'Headphones',
              'Wall Clock', 'Picture Frame', 'Throw Pillow', 'Chef Knife', 'Running Socks'])[i],
       round((4.99 + (i * 7.31) % 95)::numeric, 2)
FROM generate_series(1, 25) AS i
ORDER BY i;

-- 600 orders, spread over the customers, never before the customer signed up.
INSERT INTO public.orders (customer_id, customer_email, status, ordered_at, shipping_address, notes)
SELECT
    c.id,
    c.email,
    CASE
        WHEN i % 29 = 0 THEN 'refunded'
        WHEN i % 13 = 0 THEN 'cancelled'
        WHEN i > 570 THEN (ARRAY['pending', 'paid', 'shipped'])[1 + i % 3]::public.order_status
        ELSE 'delivered'
    END,
    c.created_at + ((i * 13) % 400) * INTERVAL '1 day' + ((i * 17) % 720) * INTERVAL '1 minute',
    c.street || ', ' || c.postal_code || ' ' || c.city || ', ' || c.country,
    CASE i % 10
        WHEN 0 THEN 'Please email the invoice to ' || c.email || '.'
        WHEN 3 THEN 'Call ' || coalesce(c.phone, '+1 (555) 555-0100') || ' if nobody answers the door.'
        WHEN 5 THEN 'Leave the parcel with the neighbour at number ' || (1 + i % 40) || '.'
        WHEN 7 THEN 'Gift for ' || c.first_name || '; send the receipt to accounts@example.org, not to ' || c.email || '.'
        ELSE NULL
    END
FROM generate_series(1, 600) AS i
JOIN public.customers c ON c.id = 1 + (i * 37) % 200
ORDER BY i;

-- 1,500 order items: odd orders have 3 lines, even orders 2.
INSERT INTO public.order_items (order_id, line_no, product_id, product_name, quantity, unit_price)
SELECT o.id, l, p.id, p.name, 1 + (o.id * l) % 4, p.unit_price
FROM public.orders o
CROSS JOIN LATERAL generate_series(1, 2 + (o.id % 2)::int) AS l
JOIN public.products p ON p.id = 1 + (o.id * 7 + l * 11) % 25
ORDER BY o.id, l;

UPDATE public.orders o
SET total = s.total
FROM (SELECT order_id, sum(quantity * unit_price) AS total FROM public.order_items GROUP BY order_id) s
WHERE s.order_id = o.id;

CREATE VIEW public.customer_totals AS
SELECT c.id AS customer_id, c.email, c.first_name, c.last_name,
       count(o.id) AS orders, coalesce(sum(o.total), 0) AS spent
FROM public.customers c
LEFT JOIN public.orders o ON o.customer_id = c.id AND o.status NOT IN ('cancelled', 'refunded')
GROUP BY c.id, c.email, c.first_name, c.last_name;
