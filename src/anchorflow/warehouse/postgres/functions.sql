-- Helper functions anchorflow's PostgreSQL dialect calls (see dialect.py). Installed in the
-- `anchorflow` schema, which is on every anchorflow connection's search_path.
-- Version: see FUNCTIONS_VERSION in adapter.py (bump it when this file changes).
-- A function that catches an error (an EXCEPTION block opens a subtransaction), or calls one
-- that does, is PARALLEL UNSAFE: PostgreSQL refuses subtransactions in a parallel query.

CREATE OR REPLACE FUNCTION anchorflow.af_try_jsonb(t text) RETURNS jsonb
  LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE AS $$
  BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_json_valid(t text) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL UNSAFE AS $$
  SELECT CASE WHEN t IS NULL THEN NULL ELSE anchorflow.af_try_jsonb(t) IS NOT NULL END $$;

CREATE OR REPLACE FUNCTION anchorflow.af_text(j jsonb, VARIADIC p text[]) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT j #>> p $$;
CREATE OR REPLACE FUNCTION anchorflow.af_text(j text, VARIADIC p text[]) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL UNSAFE AS $$ SELECT anchorflow.af_try_jsonb(j) #>> p $$;
CREATE OR REPLACE FUNCTION anchorflow.af_text0(j jsonb) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT j #>> '{}' $$;
CREATE OR REPLACE FUNCTION anchorflow.af_text0(j text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL UNSAFE AS $$ SELECT anchorflow.af_try_jsonb(j) #>> '{}' $$;
CREATE OR REPLACE FUNCTION anchorflow.af_json(j jsonb, VARIADIC p text[]) RETURNS jsonb
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT j #> p $$;
CREATE OR REPLACE FUNCTION anchorflow.af_json(j text, VARIADIC p text[]) RETURNS jsonb
  LANGUAGE sql IMMUTABLE PARALLEL UNSAFE AS $$ SELECT anchorflow.af_try_jsonb(j) #> p $$;

-- DuckDB's names for JSON types, so that statistics and drift read the same on both engines.
CREATE OR REPLACE FUNCTION anchorflow.af_json_type(j jsonb) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof(j)
    WHEN 'string' THEN 'VARCHAR' WHEN 'boolean' THEN 'BOOLEAN' WHEN 'array' THEN 'ARRAY'
    WHEN 'object' THEN 'OBJECT' WHEN 'null' THEN 'NULL'
    WHEN 'number' THEN CASE
      -- as DuckDB: a non-negative integer is UBIGINT, a negative one BIGINT, if it fits
      WHEN j::text ~ '^-?[0-9]+$' THEN
        CASE WHEN j::numeric BETWEEN 0 AND 18446744073709551615 THEN 'UBIGINT'
             WHEN j::numeric BETWEEN -9223372036854775808 AND -1 THEN 'BIGINT'
             ELSE 'DOUBLE' END
      ELSE 'DOUBLE' END
  END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_json_type(j text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL UNSAFE AS $$ SELECT anchorflow.af_json_type(anchorflow.af_try_jsonb(j)) $$;
CREATE OR REPLACE FUNCTION anchorflow.af_json_keys(j jsonb) RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(j) = 'object' THEN ARRAY(SELECT jsonb_object_keys(j)) END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_json_elements(j jsonb) RETURNS jsonb[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(j) = 'array' THEN ARRAY(SELECT jsonb_array_elements(j)) END $$;

-- TRY_CAST: NULL where the text does not convert.
-- Numbers: a regex decides (no exception block, whose subtransaction costs ~3 µs a value, and
-- ~10 µs when it fails), and the text is read as DuckDB reads it: spaces around, a sign, a
-- fraction or an exponent ('1000.0' and '1e3' are the BIGINT 1000; '1.5' rounds, as in DuckDB).
CREATE OR REPLACE FUNCTION anchorflow.af_is_number(t text) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT length(t) < 400 AND t ~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$'
         AND t !~ '[eE][-+]?0*[0-9]{5}' $$;
CREATE OR REPLACE FUNCTION anchorflow.af_bigint_of(n numeric) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN n BETWEEN -9223372036854775808 AND 9223372036854775807 THEN n::bigint END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_bigint(t text) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN length(t) < 19 AND t ~ '^\s*[-+]?[0-9]+\s*$' THEN t::bigint
              WHEN anchorflow.af_is_number(t) THEN anchorflow.af_bigint_of(round(t::numeric)) END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_integer(t text) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN length(t) < 10 AND t ~ '^\s*[-+]?[0-9]+\s*$' THEN t::integer
              WHEN anchorflow.af_is_number(t) THEN CASE WHEN round(t::numeric)
                BETWEEN -2147483648 AND 2147483647 THEN round(t::numeric)::integer END END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_smallint(t text) RETURNS smallint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN length(t) < 5 AND t ~ '^\s*[-+]?[0-9]+\s*$' THEN t::smallint
              WHEN anchorflow.af_is_number(t) THEN CASE WHEN round(t::numeric)
                BETWEEN -32768 AND 32767 THEN round(t::numeric)::smallint END END $$;
-- Exponents of three digits (1e300, 1e400) take the slow path: they may overflow.
CREATE OR REPLACE FUNCTION anchorflow.af_try_double_slow(t text) RETURNS double precision
  LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE AS $$
  BEGIN RETURN t::double precision; EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_double(t text) RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL UNSAFE AS $$
  SELECT CASE
    WHEN length(t) < 200
      AND t ~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9][0-9]?)?\s*$'
      THEN t::double precision
    WHEN t ~* '^\s*[-+]?(nan|inf|infinity)\s*$' THEN t::double precision
    WHEN anchorflow.af_is_number(t) THEN anchorflow.af_try_double_slow(t) END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_real_slow(t text) RETURNS real
  LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE AS $$
  BEGIN RETURN t::real; EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_real(t text) RETURNS real
  LANGUAGE sql IMMUTABLE PARALLEL UNSAFE AS $$
  SELECT CASE
    WHEN length(t) < 30 AND t ~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9])?\s*$'
      THEN t::real
    WHEN t ~* '^\s*[-+]?(nan|inf|infinity)\s*$' THEN t::real
    WHEN anchorflow.af_is_number(t) THEN anchorflow.af_try_real_slow(t) END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_boolean(t text) RETURNS boolean
  LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE AS $$
  BEGIN RETURN t::boolean; EXCEPTION WHEN others THEN RETURN NULL; END $$;
-- Dates and times in ISO 8601 only, as DuckDB reads them: PostgreSQL alone would also take
-- 'today', 'now', 'January 8, 1999' or 'J2451187' (a value that changes with the day it loads).
CREATE OR REPLACE FUNCTION anchorflow.af_try_timestamp(t text) RETURNS timestamp
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE AS $$
  BEGIN
    IF NOT (t ~ '^\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?\s*(Z|z|UTC|[+-][0-9]{1,2}(:?[0-9]{2})?)?\s*$' OR lower(btrim(t)) IN ('infinity', '-infinity', 'epoch')) THEN RETURN NULL; END IF;
    RETURN t::timestamp;
  EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_timestamptz(t text) RETURNS timestamptz
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE AS $$
  BEGIN
    IF NOT (t ~ '^\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?\s*(Z|z|UTC|[+-][0-9]{1,2}(:?[0-9]{2})?)?\s*$' OR lower(btrim(t)) IN ('infinity', '-infinity', 'epoch')) THEN RETURN NULL; END IF;
    RETURN t::timestamptz;
  EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_date(t text) RETURNS date
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE AS $$
  BEGIN
    IF NOT (t ~ '^\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}\s*$' OR lower(btrim(t)) IN ('infinity', '-infinity', 'epoch')) THEN RETURN NULL; END IF;
    RETURN t::date;
  EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_tinyint(t text) RETURNS smallint
  LANGUAGE sql IMMUTABLE PARALLEL UNSAFE AS $$
  SELECT CASE WHEN v BETWEEN -128 AND 127 THEN v END FROM (SELECT anchorflow.af_try_smallint(t) AS v) AS s $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_time(t text) RETURNS time
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE AS $$
  BEGIN RETURN t::time; EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_interval(t text) RETURNS interval
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE AS $$
  BEGIN RETURN t::interval; EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_uuid(t text) RETURNS uuid
  LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE AS $$
  BEGIN RETURN t::uuid; EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_numeric(t text, p integer, s integer) RETURNS numeric
  LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE AS $$
  DECLARE v numeric;
  BEGIN
    v := round(t::numeric, s);
    IF abs(v) >= 10::numeric ^ (p - s) THEN RETURN NULL; END IF;
    RETURN v;
  EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_try_cast(t text, target text) RETURNS text
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE AS $$
  BEGIN EXECUTE format('SELECT CAST(CAST($1 AS %s) AS text)', target) INTO t USING t; RETURN t;
  EXCEPTION WHEN others THEN RETURN NULL; END $$;

CREATE OR REPLACE FUNCTION anchorflow.af_isfinite(x double precision) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT x NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) $$;
CREATE OR REPLACE FUNCTION anchorflow.af_sha256(t text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT encode(sha256(convert_to(t, 'UTF8')), 'hex') $$;
-- Non-negative, like DuckDB's unsigned hash, so `hash % 100` is a bucket.
CREATE OR REPLACE FUNCTION anchorflow.af_hash(t text) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT hashtextextended(t, 0) & 9223372036854775807 $$;

-- marts: DuckDB's round(DOUBLE, n), which PostgreSQL has only for numeric; a double stays one.
CREATE OR REPLACE FUNCTION anchorflow.round(x double precision, n integer) RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT round(x::numeric, n)::double precision $$;
-- DuckDB's len(list) (sqlglot writes length(...)), which PostgreSQL has only for text and bytes.
CREATE OR REPLACE FUNCTION anchorflow.length(a anyarray) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT cardinality(a) $$;
-- DuckDB's any_value (PostgreSQL 16 has its own, found first in pg_catalog): the first non-NULL.
CREATE OR REPLACE FUNCTION anchorflow.af_any_value_step(state anyelement, v anyelement)
  RETURNS anyelement LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT coalesce(state, v) $$;
CREATE OR REPLACE AGGREGATE anchorflow.any_value(anyelement) (
  SFUNC = anchorflow.af_any_value_step, STYPE = anyelement);

-- stage
CREATE OR REPLACE FUNCTION anchorflow.af_is_whole(x double precision) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT x = trunc(x) $$;
-- The JSON types at dotted paths, and the field paths an object holds (at the top level and
-- inside the objects at `parents`), for the field statistics.
-- A JSONPath of object keys as the canonical SQL spells it ($."a"."b") as a jsonb path.
CREATE OR REPLACE FUNCTION anchorflow.af_path(p text) RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p = '$' THEN '{}'::text[]
              ELSE string_to_array(substr(p, 4, length(p) - 4), '"."') END $$;
CREATE OR REPLACE FUNCTION anchorflow.af_json_types(j jsonb, paths text[]) RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_agg(anchorflow.af_json_type(j #> anchorflow.af_path(p)) ORDER BY i)
  FROM unnest(paths) WITH ORDINALITY AS u(p, i) $$;
CREATE OR REPLACE FUNCTION anchorflow.af_json_texts(j jsonb, paths text[]) RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_agg(j #>> anchorflow.af_path(p) ORDER BY i)
  FROM unnest(paths) WITH ORDINALITY AS u(p, i) $$;
CREATE OR REPLACE FUNCTION anchorflow.af_field_paths(j jsonb, parents text[]) RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY(
    SELECT k FROM jsonb_object_keys(CASE WHEN jsonb_typeof(j) = 'object' THEN j END) AS k
    UNION ALL
    SELECT p || '.' || k FROM unnest(parents) AS p,
      LATERAL jsonb_object_keys(CASE WHEN jsonb_typeof(j #> string_to_array(p, '.')) = 'object'
                                     THEN j #> string_to_array(p, '.') END) AS k) $$;
-- The values of a JSON object, in the order of `af_json_keys` (both in jsonb's key order).
CREATE OR REPLACE FUNCTION anchorflow.af_json_values(j jsonb) RETURNS jsonb[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(j) = 'object' THEN ARRAY(SELECT v FROM jsonb_each(j) AS e(k, v))
  END $$;
-- land, journal, run: the text at a JSONPath (a parameter) of a text that may not be JSON.
CREATE OR REPLACE FUNCTION anchorflow.af_text_path(j text, p text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL UNSAFE AS $$
  SELECT jsonb_path_query_first(anchorflow.af_try_jsonb(j), ('strict ' || p)::jsonpath, '{}', true)
    #>> '{}' $$;
