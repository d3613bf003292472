COPY INTO "raw"."__landing_shop_records" ("origin", "line_no", "record") FROM (SELECT METADATA$FILENAME, METADATA$FILE_ROW_NUMBER, $1 FROM @ANCHORFLOW_STAGE/shop_records/) FILE_FORMAT = (TYPE = CSV FIELD_DELIMITER = NONE RECORD_DELIMITER = '\n' ESCAPE = NONE ESCAPE_UNENCLOSED_FIELD = NONE FIELD_OPTIONALLY_ENCLOSED_BY = NONE COMPRESSION = AUTO) PATTERN = '.*[.](json|ndjson|jsonl)([.]gz|[.]zst)?';

INSERT INTO "raw"."shop_records" ("load_id", "source", "stream", "origin", "line_no", "received_at", "record") SELECT "n"."top" + 1, 'shop', 'records', "l"."origin", "l"."line_no", CAST(CURRENT_TIMESTAMP() AS TIMESTAMPNTZ), "l"."record" FROM "raw"."__landing_shop_records" AS "l" CROSS JOIN (SELECT COALESCE(MAX("x"."load_id"), 0) AS "top" FROM (SELECT "load_id" FROM "raw"."shop_records") AS "x") AS "n" WHERE COALESCE((TRY_PARSE_JSON("record", 'd') IS NOT NULL) AND (STARTSWITH("record", '{') OR LEFT(LTRIM("record", ' ' || CHR(9) || CHR(10) || CHR(13)), 1) = '{'), FALSE);

DELETE FROM "raw"."__landing_shop_records" WHERE COALESCE((TRY_PARSE_JSON("record", 'd') IS NOT NULL) AND (STARTSWITH("record", '{') OR LEFT(LTRIM("record", ' ' || CHR(9) || CHR(10) || CHR(13)), 1) = '{'), FALSE);

CREATE OR REPLACE TEMPORARY TABLE "__typed_batch" AS SELECT "load_id", "origin", "line_no", "select", "userId", "from", "total", "email", "ref", "day", "payload", CASE WHEN "select" IS NULL THEN "__t_0" END AS "__text_0", CASE WHEN "from" IS NULL THEN "__t_2" END AS "__text_2", CASE WHEN "total" IS NULL THEN "__t_3" END AS "__text_3", CASE WHEN "ref" IS NULL THEN "__t_5" END AS "__text_5", CASE WHEN "day" IS NULL THEN "__t_6" END AS "__text_6", (NOT "__t_0" IS NULL AND "select" IS NULL) OR (NOT "__t_2" IS NULL AND "from" IS NULL) OR (NOT "__t_3" IS NULL AND "total" IS NULL) OR (NOT "__t_5" IS NULL AND "ref" IS NULL) OR (NOT "__t_6" IS NULL AND "day" IS NULL) AS "__bad" FROM (SELECT "load_id", "origin", "line_no", CASE WHEN (TRY_CAST(CAST(GET("s", 'id') AS VARCHAR) AS DOUBLE) = FLOOR(TRY_CAST(CAST(GET("s", 'id') AS VARCHAR) AS DOUBLE))) THEN TRY_CAST(CAST(GET("s", 'id') AS VARCHAR) AS BIGINT) END AS "select", CAST(GET_PATH(GET("s", 'user'), '"id"') AS VARCHAR) AS "userId", CAST(CONVERT_TIMEZONE('UTC', TRY_CAST(CAST(GET_PATH(GET("s", 'meta'), '"from date"') AS VARCHAR) AS TIMESTAMPTZ)) AS TIMESTAMPNTZ) AS "from", CASE WHEN TRY_CAST(CAST(GET_PATH(GET("s", 'amount'), '"eur"."v"') AS VARCHAR) AS DECIMAL(12, 2)) = TRY_CAST(CAST(GET_PATH(GET("s", 'amount'), '"eur"."v"') AS VARCHAR) AS DOUBLE) THEN TRY_CAST(CAST(GET_PATH(GET("s", 'amount'), '"eur"."v"') AS VARCHAR) AS DECIMAL(12, 2)) END AS "total", SHA2($anchorflow_pii_salt || CAST(GET_PATH(GET("s", 'user'), '"email"') AS VARCHAR), 256) AS "email", CASE WHEN REGEXP_LIKE(CAST(GET("s", 'ref') AS VARCHAR), '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}') THEN LOWER(CAST(GET("s", 'ref') AS VARCHAR)) END AS "ref", CASE WHEN TRY_CAST(CAST(GET("s", 'day') AS VARCHAR) AS DATE) = TRY_CAST(CAST(GET("s", 'day') AS VARCHAR) AS TIMESTAMPNTZ) THEN TRY_CAST(CAST(GET("s", 'day') AS VARCHAR) AS DATE) END AS "day", GET("s", 'payload') AS "payload", CAST(GET("s", 'id') AS VARCHAR) AS "__t_0", CAST(GET_PATH(GET("s", 'meta'), '"from date"') AS VARCHAR) AS "__t_2", CAST(GET_PATH(GET("s", 'amount'), '"eur"."v"') AS VARCHAR) AS "__t_3", CAST(GET("s", 'ref') AS VARCHAR) AS "__t_5", CAST(GET("s", 'day') AS VARCHAR) AS "__t_6" FROM (WITH "__parsed" AS (SELECT "load_id", "origin", "line_no", PARSE_JSON("record", 'd') AS "s" FROM "raw"."shop_records" AS "__source" WHERE NOT "load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'stage' AND "j"."target" = 'Order') AND ((CHARINDEX('"it\'s an order; DROP TABLE raw.shop_records"', "record") > 0) OR CHARINDEX('\\', "record") > 0)) SELECT * FROM "__parsed" WHERE COALESCE(CAST(GET("s", 'kind') AS VARCHAR) = 'it\'s an order; DROP TABLE raw.shop_records', FALSE)) AS "__p") AS "__t";

INSERT INTO "staging"."Order" ("load_id", "select", "userId", "from", "total", "email", "ref", "day", "payload") WITH "seen" AS (SELECT "t"."select", "t"."userId" FROM "staging"."Order" AS "t" WHERE "t"."select" IN (SELECT "select" FROM "__typed_batch")) SELECT "load_id", "select", "userId", "from", "total", "email", "ref", "day", "payload" FROM "__typed_batch" AS "n" WHERE NOT (("n"."select" IS NULL OR "n"."userId" IS NULL)) AND NOT EXISTS(SELECT 1 FROM "seen" AS "s" WHERE "s"."select" = "n"."select" AND "s"."userId" = "n"."userId") QUALIFY ROW_NUMBER() OVER (PARTITION BY "n"."select", "n"."userId" ORDER BY "n"."load_id", "n"."origin", "n"."line_no") = 1;

INSERT INTO "meta"."compiled_loads" ("step", "target", "model", "load_id") SELECT DISTINCT 'stage', 'Order', 'Order', "s"."load_id" FROM "raw"."shop_records" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'stage' AND "j"."target" = 'Order');

DROP TABLE "__typed_batch";

CREATE OR REPLACE TEMPORARY TABLE "__typed_batch" AS SELECT "load_id", "origin", "line_no", "line_no_", "select", "sku", "userId", "from", CASE WHEN "select" IS NULL THEN "__t_0" END AS "__text_0", CASE WHEN "from" IS NULL THEN "__t_3" END AS "__text_3", "__not_array", (NOT "__t_0" IS NULL AND "select" IS NULL) OR (NOT "__t_3" IS NULL AND "from" IS NULL) AS "__bad" FROM (SELECT "load_id", "origin", "line_no", "line_no_", CASE WHEN (TRY_CAST(CAST(GET("s", 'id') AS VARCHAR) AS DOUBLE) = FLOOR(TRY_CAST(CAST(GET("s", 'id') AS VARCHAR) AS DOUBLE))) THEN TRY_CAST(CAST(GET("s", 'id') AS VARCHAR) AS BIGINT) END AS "select", CAST(GET_PATH("__e", '"sku"') AS VARCHAR) AS "sku", CAST(GET_PATH(GET("s", 'user'), '"id"') AS VARCHAR) AS "userId", CAST(CONVERT_TIMEZONE('UTC', TRY_CAST(CAST(GET_PATH(GET("s", 'meta'), '"from date"') AS VARCHAR) AS TIMESTAMPTZ)) AS TIMESTAMPNTZ) AS "from", CAST(GET("s", 'id') AS VARCHAR) AS "__t_0", CAST(GET_PATH(GET("s", 'meta'), '"from date"') AS VARCHAR) AS "__t_3", "__not_array" FROM (SELECT "load_id", "origin", "line_no", "s", COALESCE(NOT DECODE(TYPEOF(GET("s", 'lines')), 'NULL_VALUE', 'NULL', TYPEOF(GET("s", 'lines'))) IN ('ARRAY', 'NULL'), FALSE) AS "__not_array", "__f"."VALUE" AS "__e", CAST("__f"."INDEX" AS INT) AS "line_no_" FROM (WITH "__parsed" AS (SELECT "load_id", "origin", "line_no", PARSE_JSON("record", 'd') AS "s" FROM "raw"."shop_records" AS "__source" WHERE NOT "load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'stage' AND "j"."target" = 'Line') AND (((CHARINDEX('"it\'s an order; DROP TABLE raw.shop_records"', "record") > 0)) OR CHARINDEX('\\', "record") > 0)) SELECT * FROM "__parsed" WHERE COALESCE(CAST(GET("s", 'kind') AS VARCHAR) = 'it\'s an order; DROP TABLE raw.shop_records' AND TRY_CAST(CAST(GET("s", 'lines_total') AS VARCHAR) AS DOUBLE) > 0, FALSE)) AS "__x", LATERAL FLATTEN(INPUT => CASE WHEN DECODE(TYPEOF(GET("s", 'lines')), 'NULL_VALUE', 'NULL', TYPEOF(GET("s", 'lines'))) = 'ARRAY' THEN GET("s", 'lines') WHEN DECODE(TYPEOF(GET("s", 'lines')), 'NULL_VALUE', 'NULL', TYPEOF(GET("s", 'lines'))) <> 'NULL' THEN PARSE_JSON('[null]') END) AS "__f") AS "__p") AS "__t";

INSERT INTO "staging"."Line" ("load_id", "line_no_", "select", "sku", "userId", "from") WITH "seen" AS (SELECT "t"."select", "t"."line_no_" FROM "staging"."Line" AS "t" WHERE "t"."select" IN (SELECT "select" FROM "__typed_batch")) SELECT "load_id", "line_no_", "select", "sku", "userId", "from" FROM "__typed_batch" AS "n" WHERE NOT (("n"."select" IS NULL OR "n"."line_no_" IS NULL OR "n"."__not_array")) AND NOT EXISTS(SELECT 1 FROM "seen" AS "s" WHERE "s"."select" = "n"."select" AND "s"."line_no_" = "n"."line_no_") QUALIFY ROW_NUMBER() OVER (PARTITION BY "n"."select", "n"."line_no_" ORDER BY "n"."load_id", "n"."origin", "n"."line_no", "n"."line_no_") = 1;

INSERT INTO "meta"."compiled_loads" ("step", "target", "model", "load_id") SELECT DISTINCT 'stage', 'Line', 'Line', "s"."load_id" FROM "raw"."shop_records" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'stage' AND "j"."target" = 'Line');

DROP TABLE "__typed_batch";

INSERT INTO "anchor"."Customer" ("id", "userId", "load_id", "loaded_at") SELECT "t"."top" + ROW_NUMBER() OVER (ORDER BY "n"."userId"), "n"."userId", "n"."load_id", CAST(CURRENT_TIMESTAMP() AS TIMESTAMPNTZ) FROM (SELECT "userId", MIN("load_id") AS "load_id" FROM (SELECT CAST("s"."userId" AS VARCHAR) AS "userId", "s"."load_id" FROM "staging"."Order" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer' AND "j"."model" = 'Order') AND NOT "s"."userId" IS NULL UNION ALL SELECT CAST("s"."userId" AS VARCHAR) AS "userId", "s"."load_id" FROM "staging"."Line" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer' AND "j"."model" = 'Line') AND NOT "s"."userId" IS NULL) AS "u" GROUP BY "userId") AS "n" CROSS JOIN (SELECT COALESCE(MAX("id"), 0) AS "top" FROM "anchor"."Customer") AS "t" WHERE NOT EXISTS(SELECT 1 FROM "anchor"."Customer" AS "e" WHERE "e"."userId" = "n"."userId");

INSERT INTO "meta"."compiled_loads" ("step", "target", "model", "load_id") SELECT DISTINCT 'anchor', 'Customer', 'Order', "s"."load_id" FROM "staging"."Order" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer' AND "j"."model" = 'Order');

INSERT INTO "meta"."compiled_loads" ("step", "target", "model", "load_id") SELECT DISTINCT 'anchor', 'Customer', 'Line', "s"."load_id" FROM "staging"."Line" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer' AND "j"."model" = 'Line');

INSERT INTO "anchor"."Sku" ("id", "sku", "load_id", "loaded_at") SELECT "t"."top" + ROW_NUMBER() OVER (ORDER BY "n"."sku"), "n"."sku", "n"."load_id", CAST(CURRENT_TIMESTAMP() AS TIMESTAMPNTZ) FROM (SELECT "sku", MIN("load_id") AS "load_id" FROM (SELECT CAST("s"."sku" AS VARCHAR) AS "sku", "s"."load_id" FROM "staging"."Line" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Sku' AND "j"."model" = 'Line') AND NOT "s"."sku" IS NULL) AS "u" GROUP BY "sku") AS "n" CROSS JOIN (SELECT COALESCE(MAX("id"), 0) AS "top" FROM "anchor"."Sku") AS "t" WHERE NOT EXISTS(SELECT 1 FROM "anchor"."Sku" AS "e" WHERE "e"."sku" = "n"."sku");

INSERT INTO "meta"."compiled_loads" ("step", "target", "model", "load_id") SELECT DISTINCT 'anchor', 'Sku', 'Line', "s"."load_id" FROM "staging"."Line" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Sku' AND "j"."model" = 'Line');

CREATE OR REPLACE TEMPORARY TABLE "__rows_0" AS SELECT "e0"."id" AS "id", CAST("s"."total" AS DECIMAL(12, 2)) AS "value", CAST("s"."from" AS TIMESTAMPNTZ) AS "changed_at", "s"."load_id", (NOT "s"."from" IS NULL AND NOT "s"."userId" IS NULL) AS "__placeable", ("e0"."id" IS NULL) AS "__missing" FROM "staging"."Order" AS "s" LEFT JOIN "anchor"."Customer" AS "e0" ON "e0"."userId" = "s"."userId" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_Total' AND "j"."model" = 'Order') AND NOT "s"."total" IS NULL;

CREATE OR REPLACE TEMPORARY TABLE "__obs_0" AS WITH "__r" AS (SELECT * FROM "__rows_0" WHERE "__placeable" AND NOT "__missing"), "__g" AS (SELECT "id", "changed_at", MIN("value") AS "value", MAX("value") AS "__max0", MIN("load_id") AS "load_id" FROM "__r" GROUP BY "id", "changed_at") SELECT "id", "value", "changed_at", "load_id", FALSE AS "__several" FROM "__g" WHERE "value" = "__max0" UNION ALL SELECT "id", "value", "changed_at", "load_id", TRUE AS "__several" FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "id", "changed_at" ORDER BY "__s0" DESC NULLS LAST, "load_id") AS "__rn" FROM (SELECT "r".*, "r"."value" AS "__s0" FROM (SELECT "r".* FROM "__r" AS "r" JOIN "__g" AS "g" ON "r"."id" = "g"."id" AND "r"."changed_at" = "g"."changed_at" WHERE "g"."value" <> "g"."__max0") AS "r") AS "r") AS "d" WHERE "__rn" = 1;

CREATE OR REPLACE TEMPORARY TABLE "__bounds_0" AS SELECT "t"."id", "t"."t0", COALESCE(MAX(IFF("a"."changed_at" <= "t"."t0", "a"."changed_at", NULL)), "t"."t0") AS "start" FROM (SELECT "id", MIN("changed_at") AS "t0" FROM "__obs_0" GROUP BY "id") AS "t" LEFT JOIN "anchor"."Customer_Total" AS "a" ON "a"."id" = "t"."id" GROUP BY "t"."id", "t"."t0";

CREATE OR REPLACE TEMPORARY TABLE "__recent_0" AS SELECT "a"."id", "a"."value", "a"."changed_at", "a"."load_id" FROM "anchor"."Customer_Total" AS "a" JOIN "__bounds_0" AS "b" ON "a"."id" = "b"."id" WHERE "a"."changed_at" >= "b"."start";

CREATE OR REPLACE TEMPORARY TABLE "__late_0" AS SELECT * FROM (SELECT "x".* FROM (SELECT "e0"."id" AS "id", CAST("s"."total" AS DECIMAL(12, 2)) AS "value", CAST("s"."from" AS TIMESTAMPNTZ) AS "changed_at", "s"."load_id", (NOT "s"."from" IS NULL AND NOT "s"."userId" IS NULL) AS "__placeable", ("e0"."id" IS NULL) AS "__missing" FROM "staging"."Order" AS "s" LEFT JOIN "anchor"."Customer" AS "e0" ON "e0"."userId" = "s"."userId" WHERE "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_Total' AND "j"."model" = 'Order') AND "s"."from" >= (SELECT MIN("changed_at") FROM "__obs_0") AND NOT "s"."total" IS NULL) AS "x" JOIN (SELECT "id", MIN("changed_at") AS "t0" FROM "__obs_0" GROUP BY "id" HAVING MIN("changed_at") <= (SELECT MAX(CAST("s"."from" AS TIMESTAMPNTZ)) FROM "staging"."Order" AS "s" WHERE "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_Total' AND "j"."model" = 'Order'))) AS "t" ON "x"."id" = "t"."id" WHERE "x"."changed_at" >= "t"."t0" AND "x"."__placeable" AND NOT "x"."__missing") AS "l";

CREATE OR REPLACE TEMPORARY TABLE "__fresh_0" AS WITH "__r" AS (SELECT "id", "value", "changed_at", "load_id" FROM "__obs_0" UNION ALL SELECT "id", "value", "changed_at", "load_id" FROM "__late_0"), "__g" AS (SELECT "id", "changed_at", MIN("value") AS "value", MAX("value") AS "__max0", MIN("load_id") AS "load_id" FROM "__r" GROUP BY "id", "changed_at") SELECT "id", "value", "changed_at", "load_id" FROM "__g" WHERE "value" = "__max0" UNION ALL SELECT "id", "value", "changed_at", "load_id" FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "id", "changed_at" ORDER BY "__s0" DESC NULLS LAST, "load_id") AS "__rn" FROM (SELECT "r".*, "r"."value" AS "__s0" FROM (SELECT "r".* FROM "__r" AS "r" JOIN "__g" AS "g" ON "r"."id" = "g"."id" AND "r"."changed_at" = "g"."changed_at" WHERE "g"."value" <> "g"."__max0") AS "r") AS "r") AS "d" WHERE "__rn" = 1;

CREATE OR REPLACE TEMPORARY TABLE "__losers_0" AS SELECT "a"."id", "a"."changed_at" FROM (SELECT "r".*, "r"."value" AS "__s0" FROM (SELECT "a".* FROM "__recent_0" AS "a" WHERE EXISTS(SELECT 1 FROM "__fresh_0" AS "w" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at" AND ("w"."value" <> "a"."value"))) AS "r") AS "a" JOIN (SELECT "r".*, "r"."value" AS "__s0" FROM (SELECT "w".* FROM "__fresh_0" AS "w" WHERE EXISTS(SELECT 1 FROM "__recent_0" AS "a" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at" AND ("w"."value" <> "a"."value"))) AS "r") AS "w" ON "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at" WHERE (("w"."__s0" > "a"."__s0"));

DELETE FROM "anchor"."Customer_Total" AS "a" WHERE EXISTS(SELECT 1 FROM "__losers_0" AS "w" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at");

DELETE FROM "__recent_0" AS "a" WHERE EXISTS(SELECT 1 FROM "__losers_0" AS "w" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at");

DROP TABLE "__losers_0";

CREATE OR REPLACE TEMPORARY TABLE "__inserted_0" AS SELECT "id", "value", "changed_at", "load_id" FROM (SELECT *, (LAG("value") OVER (PARTITION BY "id" ORDER BY "changed_at") IS DISTINCT FROM "value") AS "__change" FROM (SELECT "id", "value", "changed_at", "load_id", 0 AS "fresh" FROM "__recent_0" UNION ALL SELECT "o"."id", "o"."value", "o"."changed_at", "o"."load_id", 1 AS "fresh" FROM "__fresh_0" AS "o" WHERE NOT EXISTS(SELECT 1 FROM "__recent_0" AS "x" WHERE "x"."id" = "o"."id" AND "x"."changed_at" = "o"."changed_at")) AS "m") AS "p" WHERE "p"."fresh" = 1 AND "p"."__change";

INSERT INTO "anchor"."Customer_Total" ("id", "value", "changed_at", "load_id") SELECT "id", "value", "changed_at", "load_id" FROM "__inserted_0";

INSERT INTO "meta"."compiled_loads" ("step", "target", "model", "load_id") SELECT DISTINCT 'anchor', 'Customer_Total', 'Order', "s"."load_id" FROM "staging"."Order" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_Total' AND "j"."model" = 'Order');

DROP TABLE "__rows_0";

DROP TABLE "__obs_0";

DROP TABLE "__bounds_0";

DROP TABLE "__recent_0";

DROP TABLE "__late_0";

DROP TABLE "__fresh_0";

DROP TABLE "__inserted_0";

CREATE OR REPLACE TEMPORARY TABLE "__rows_1" AS SELECT "e0"."id" AS "id", CAST("s"."day" AS DATE) AS "value", CAST("s"."from" AS TIMESTAMPNTZ) AS "changed_at", "s"."load_id", (NOT "s"."from" IS NULL AND NOT "s"."userId" IS NULL) AS "__placeable", ("e0"."id" IS NULL) AS "__missing" FROM "staging"."Order" AS "s" LEFT JOIN "anchor"."Customer" AS "e0" ON "e0"."userId" = "s"."userId" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_firstDay' AND "j"."model" = 'Order') AND NOT "s"."day" IS NULL;

CREATE OR REPLACE TEMPORARY TABLE "__obs_1" AS WITH "__r" AS (SELECT * FROM "__rows_1" WHERE "__placeable" AND NOT "__missing"), "__g" AS (SELECT "id", "changed_at", MIN("value") AS "value", MAX("value") AS "__max0", MIN("load_id") AS "load_id" FROM "__r" GROUP BY "id", "changed_at") SELECT "id", "value", "changed_at", "load_id", FALSE AS "__several" FROM "__g" WHERE "value" = "__max0" UNION ALL SELECT "id", "value", "changed_at", "load_id", TRUE AS "__several" FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "id", "changed_at" ORDER BY "__s0" DESC NULLS LAST, "load_id") AS "__rn" FROM (SELECT "r".*, "r"."value" AS "__s0" FROM (SELECT "r".* FROM "__r" AS "r" JOIN "__g" AS "g" ON "r"."id" = "g"."id" AND "r"."changed_at" = "g"."changed_at" WHERE "g"."value" <> "g"."__max0") AS "r") AS "r") AS "d" WHERE "__rn" = 1;

CREATE OR REPLACE TEMPORARY TABLE "__bounds_1" AS SELECT "t"."id", "t"."t0", COALESCE(MAX(IFF("a"."changed_at" <= "t"."t0", "a"."changed_at", NULL)), "t"."t0") AS "start" FROM (SELECT "id", MIN("changed_at") AS "t0" FROM "__obs_1" GROUP BY "id") AS "t" LEFT JOIN "anchor"."Customer_firstDay" AS "a" ON "a"."id" = "t"."id" GROUP BY "t"."id", "t"."t0";

CREATE OR REPLACE TEMPORARY TABLE "__recent_1" AS SELECT "a"."id", "a"."value", "a"."changed_at", "a"."load_id" FROM "anchor"."Customer_firstDay" AS "a" JOIN "__bounds_1" AS "b" ON "a"."id" = "b"."id" WHERE "a"."changed_at" >= "b"."start";

CREATE OR REPLACE TEMPORARY TABLE "__losers_1" AS SELECT "a"."id", "a"."changed_at" FROM (SELECT "r".*, "r"."value" AS "__s0" FROM (SELECT "a".* FROM "__recent_1" AS "a" WHERE EXISTS(SELECT 1 FROM "__obs_1" AS "w" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at" AND ("w"."value" <> "a"."value"))) AS "r") AS "a" JOIN (SELECT "r".*, "r"."value" AS "__s0" FROM (SELECT "w".* FROM "__obs_1" AS "w" WHERE EXISTS(SELECT 1 FROM "__recent_1" AS "a" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at" AND ("w"."value" <> "a"."value"))) AS "r") AS "w" ON "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at" WHERE (("w"."__s0" > "a"."__s0"));

DELETE FROM "anchor"."Customer_firstDay" AS "a" WHERE EXISTS(SELECT 1 FROM "__losers_1" AS "w" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at");

DELETE FROM "__recent_1" AS "a" WHERE EXISTS(SELECT 1 FROM "__losers_1" AS "w" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at");

DROP TABLE "__losers_1";

CREATE OR REPLACE TEMPORARY TABLE "__inserted_1" AS SELECT "f"."id", "f"."value", "f"."changed_at", "f"."load_id" FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "id" ORDER BY "changed_at", "load_id") AS "__rn" FROM "__obs_1") AS "f" LEFT JOIN (SELECT "a"."id", MIN("a"."changed_at") AS "first" FROM "anchor"."Customer_firstDay" AS "a" WHERE EXISTS(SELECT 1 FROM "__obs_1" AS "o" WHERE "o"."id" = "a"."id") GROUP BY "a"."id") AS "s" ON "f"."id" = "s"."id" WHERE "f"."__rn" = 1 AND ("s"."first" IS NULL OR "f"."changed_at" < "s"."first");

INSERT INTO "anchor"."Customer_firstDay" ("id", "value", "changed_at", "load_id") SELECT "id", "value", "changed_at", "load_id" FROM "__inserted_1";

INSERT INTO "meta"."compiled_loads" ("step", "target", "model", "load_id") SELECT DISTINCT 'anchor', 'Customer_firstDay', 'Order', "s"."load_id" FROM "staging"."Order" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_firstDay' AND "j"."model" = 'Order');

DROP TABLE "__rows_1";

DROP TABLE "__obs_1";

DROP TABLE "__bounds_1";

DROP TABLE "__recent_1";

DROP TABLE "__inserted_1";

CREATE OR REPLACE TEMPORARY TABLE "__rows_2" AS SELECT "e0"."id" AS "id", CAST("s"."email" AS VARCHAR) AS "value", CAST("s"."from" AS TIMESTAMPNTZ) AS "changed_at", "s"."load_id", (NOT "s"."from" IS NULL AND NOT "s"."userId" IS NULL) AS "__placeable", ("e0"."id" IS NULL) AS "__missing" FROM "staging"."Order" AS "s" LEFT JOIN "anchor"."Customer" AS "e0" ON "e0"."userId" = "s"."userId" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_email' AND "j"."model" = 'Order') AND NOT "s"."email" IS NULL;

CREATE OR REPLACE TEMPORARY TABLE "__obs_2" AS WITH "__r" AS (SELECT * FROM "__rows_2" WHERE "__placeable" AND NOT "__missing"), "__g" AS (SELECT "id", "changed_at", MIN("value") AS "value", MAX("value") AS "__max0", MIN("load_id") AS "load_id" FROM "__r" GROUP BY "id", "changed_at") SELECT "id", "value", "changed_at", "load_id", FALSE AS "__several" FROM "__g" WHERE "value" = "__max0" UNION ALL SELECT "id", "value", "changed_at", "load_id", TRUE AS "__several" FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "id", "changed_at" ORDER BY "__s0" DESC NULLS LAST, "load_id") AS "__rn" FROM (SELECT "r".*, "r"."value" AS "__s0" FROM (SELECT "r".* FROM "__r" AS "r" JOIN "__g" AS "g" ON "r"."id" = "g"."id" AND "r"."changed_at" = "g"."changed_at" WHERE "g"."value" <> "g"."__max0") AS "r") AS "r") AS "d" WHERE "__rn" = 1;

CREATE OR REPLACE TEMPORARY TABLE "__bounds_2" AS SELECT "t"."id", "t"."t0", COALESCE(MAX(IFF("a"."changed_at" <= "t"."t0", "a"."changed_at", NULL)), "t"."t0") AS "start" FROM (SELECT "id", MIN("changed_at") AS "t0" FROM "__obs_2" GROUP BY "id") AS "t" LEFT JOIN "anchor"."Customer_email" AS "a" ON "a"."id" = "t"."id" GROUP BY "t"."id", "t"."t0";

CREATE OR REPLACE TEMPORARY TABLE "__recent_2" AS SELECT "a"."id", "a"."value", "a"."changed_at", "a"."load_id" FROM "anchor"."Customer_email" AS "a" JOIN "__bounds_2" AS "b" ON "a"."id" = "b"."id" WHERE "a"."changed_at" >= "b"."start";

CREATE OR REPLACE TEMPORARY TABLE "__late_2" AS SELECT * FROM (SELECT "x".* FROM (SELECT "e0"."id" AS "id", CAST("s"."email" AS VARCHAR) AS "value", CAST("s"."from" AS TIMESTAMPNTZ) AS "changed_at", "s"."load_id", (NOT "s"."from" IS NULL AND NOT "s"."userId" IS NULL) AS "__placeable", ("e0"."id" IS NULL) AS "__missing" FROM "staging"."Order" AS "s" LEFT JOIN "anchor"."Customer" AS "e0" ON "e0"."userId" = "s"."userId" WHERE "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_email' AND "j"."model" = 'Order') AND "s"."from" >= (SELECT MIN("changed_at") FROM "__obs_2") AND NOT "s"."email" IS NULL) AS "x" JOIN (SELECT "id", MIN("changed_at") AS "t0" FROM "__obs_2" GROUP BY "id" HAVING MIN("changed_at") <= (SELECT MAX(CAST("s"."from" AS TIMESTAMPNTZ)) FROM "staging"."Order" AS "s" WHERE "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_email' AND "j"."model" = 'Order'))) AS "t" ON "x"."id" = "t"."id" WHERE "x"."changed_at" >= "t"."t0" AND "x"."__placeable" AND NOT "x"."__missing") AS "l";

CREATE OR REPLACE TEMPORARY TABLE "__fresh_2" AS WITH "__r" AS (SELECT "id", "value", "changed_at", "load_id" FROM "__obs_2" UNION ALL SELECT "id", "value", "changed_at", "load_id" FROM "__late_2"), "__g" AS (SELECT "id", "changed_at", MIN("value") AS "value", MAX("value") AS "__max0", MIN("load_id") AS "load_id" FROM "__r" GROUP BY "id", "changed_at") SELECT "id", "value", "changed_at", "load_id" FROM "__g" WHERE "value" = "__max0" UNION ALL SELECT "id", "value", "changed_at", "load_id" FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "id", "changed_at" ORDER BY "__s0" DESC NULLS LAST, "load_id") AS "__rn" FROM (SELECT "r".*, "r"."value" AS "__s0" FROM (SELECT "r".* FROM "__r" AS "r" JOIN "__g" AS "g" ON "r"."id" = "g"."id" AND "r"."changed_at" = "g"."changed_at" WHERE "g"."value" <> "g"."__max0") AS "r") AS "r") AS "d" WHERE "__rn" = 1;

CREATE OR REPLACE TEMPORARY TABLE "__losers_2" AS SELECT "a"."id", "a"."changed_at" FROM (SELECT "r".*, "r"."value" AS "__s0" FROM (SELECT "a".* FROM "__recent_2" AS "a" WHERE EXISTS(SELECT 1 FROM "__fresh_2" AS "w" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at" AND ("w"."value" <> "a"."value"))) AS "r") AS "a" JOIN (SELECT "r".*, "r"."value" AS "__s0" FROM (SELECT "w".* FROM "__fresh_2" AS "w" WHERE EXISTS(SELECT 1 FROM "__recent_2" AS "a" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at" AND ("w"."value" <> "a"."value"))) AS "r") AS "w" ON "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at" WHERE (("w"."__s0" > "a"."__s0"));

DELETE FROM "anchor"."Customer_email" AS "a" WHERE EXISTS(SELECT 1 FROM "__losers_2" AS "w" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at");

DELETE FROM "__recent_2" AS "a" WHERE EXISTS(SELECT 1 FROM "__losers_2" AS "w" WHERE "w"."id" = "a"."id" AND "w"."changed_at" = "a"."changed_at");

DROP TABLE "__losers_2";

CREATE OR REPLACE TEMPORARY TABLE "__inserted_2" AS SELECT "id", "value", "changed_at", "load_id" FROM (SELECT *, (LAG("value") OVER (PARTITION BY "id" ORDER BY "changed_at") IS DISTINCT FROM "value") AS "__change" FROM (SELECT "id", "value", "changed_at", "load_id", 0 AS "fresh" FROM "__recent_2" UNION ALL SELECT "o"."id", "o"."value", "o"."changed_at", "o"."load_id", 1 AS "fresh" FROM "__fresh_2" AS "o" WHERE NOT EXISTS(SELECT 1 FROM "__recent_2" AS "x" WHERE "x"."id" = "o"."id" AND "x"."changed_at" = "o"."changed_at")) AS "m") AS "p" WHERE "p"."fresh" = 1 AND "p"."__change";

INSERT INTO "anchor"."Customer_email" ("id", "value", "changed_at", "load_id") SELECT "id", "value", "changed_at", "load_id" FROM "__inserted_2";

INSERT INTO "meta"."compiled_loads" ("step", "target", "model", "load_id") SELECT DISTINCT 'anchor', 'Customer_email', 'Order', "s"."load_id" FROM "staging"."Order" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_email' AND "j"."model" = 'Order');

DROP TABLE "__rows_2";

DROP TABLE "__obs_2";

DROP TABLE "__bounds_2";

DROP TABLE "__recent_2";

DROP TABLE "__late_2";

DROP TABLE "__fresh_2";

DROP TABLE "__inserted_2";

CREATE OR REPLACE TEMPORARY TABLE "__rows_3" AS SELECT "e0"."id" AS "customer_id", "e1"."id" AS "sku_id", CAST("s"."from" AS TIMESTAMPNTZ) AS "changed_at", "s"."load_id", (NOT "s"."from" IS NULL AND NOT "s"."userId" IS NULL AND NOT "s"."sku" IS NULL) AS "__placeable", ("e0"."id" IS NULL OR "e1"."id" IS NULL) AS "__missing" FROM "staging"."Line" AS "s" LEFT JOIN "anchor"."Customer" AS "e0" ON "e0"."userId" = "s"."userId" LEFT JOIN "anchor"."Sku" AS "e1" ON "e1"."sku" = "s"."sku" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_Sku' AND "j"."model" = 'Line');

CREATE OR REPLACE TEMPORARY TABLE "__obs_3" AS WITH "__r" AS (SELECT * FROM "__rows_3" WHERE "__placeable" AND NOT "__missing"), "__g" AS (SELECT "customer_id", "changed_at", MIN("sku_id") AS "sku_id", MAX("sku_id") AS "__max0", MIN("load_id") AS "load_id" FROM "__r" GROUP BY "customer_id", "changed_at") SELECT "customer_id", "sku_id", "changed_at", "load_id", FALSE AS "__several" FROM "__g" WHERE "sku_id" = "__max0" UNION ALL SELECT "customer_id", "sku_id", "changed_at", "load_id", TRUE AS "__several" FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "customer_id", "changed_at" ORDER BY "__s0" DESC NULLS LAST, "load_id") AS "__rn" FROM (SELECT "r".*, "s0"."sku" AS "__s0" FROM (SELECT "r".* FROM "__r" AS "r" JOIN "__g" AS "g" ON "r"."customer_id" = "g"."customer_id" AND "r"."changed_at" = "g"."changed_at" WHERE "g"."sku_id" <> "g"."__max0") AS "r" JOIN "anchor"."Sku" AS "s0" ON "s0"."id" = "r"."sku_id") AS "r") AS "d" WHERE "__rn" = 1;

CREATE OR REPLACE TEMPORARY TABLE "__bounds_3" AS SELECT "t"."customer_id", "t"."t0", COALESCE(MAX(IFF("a"."changed_at" <= "t"."t0", "a"."changed_at", NULL)), "t"."t0") AS "start" FROM (SELECT "customer_id", MIN("changed_at") AS "t0" FROM "__obs_3" GROUP BY "customer_id") AS "t" LEFT JOIN "anchor"."Customer_Sku" AS "a" ON "a"."customer_id" = "t"."customer_id" GROUP BY "t"."customer_id", "t"."t0";

CREATE OR REPLACE TEMPORARY TABLE "__recent_3" AS SELECT "a"."customer_id", "a"."sku_id", "a"."changed_at", "a"."load_id" FROM "anchor"."Customer_Sku" AS "a" JOIN "__bounds_3" AS "b" ON "a"."customer_id" = "b"."customer_id" WHERE "a"."changed_at" >= "b"."start";

CREATE OR REPLACE TEMPORARY TABLE "__late_3" AS SELECT * FROM (SELECT "x".* FROM (SELECT "e0"."id" AS "customer_id", "e1"."id" AS "sku_id", CAST("s"."from" AS TIMESTAMPNTZ) AS "changed_at", "s"."load_id", (NOT "s"."from" IS NULL AND NOT "s"."userId" IS NULL AND NOT "s"."sku" IS NULL) AS "__placeable", ("e0"."id" IS NULL OR "e1"."id" IS NULL) AS "__missing" FROM "staging"."Line" AS "s" LEFT JOIN "anchor"."Customer" AS "e0" ON "e0"."userId" = "s"."userId" LEFT JOIN "anchor"."Sku" AS "e1" ON "e1"."sku" = "s"."sku" WHERE "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_Sku' AND "j"."model" = 'Line') AND "s"."from" >= (SELECT MIN("changed_at") FROM "__obs_3")) AS "x" JOIN (SELECT "customer_id", MIN("changed_at") AS "t0" FROM "__obs_3" GROUP BY "customer_id" HAVING MIN("changed_at") <= (SELECT MAX(CAST("s"."from" AS TIMESTAMPNTZ)) FROM "staging"."Line" AS "s" WHERE "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_Sku' AND "j"."model" = 'Line'))) AS "t" ON "x"."customer_id" = "t"."customer_id" WHERE "x"."changed_at" >= "t"."t0" AND "x"."__placeable" AND NOT "x"."__missing") AS "l";

CREATE OR REPLACE TEMPORARY TABLE "__fresh_3" AS WITH "__r" AS (SELECT "customer_id", "sku_id", "changed_at", "load_id" FROM "__obs_3" UNION ALL SELECT "customer_id", "sku_id", "changed_at", "load_id" FROM "__late_3"), "__g" AS (SELECT "customer_id", "changed_at", MIN("sku_id") AS "sku_id", MAX("sku_id") AS "__max0", MIN("load_id") AS "load_id" FROM "__r" GROUP BY "customer_id", "changed_at") SELECT "customer_id", "sku_id", "changed_at", "load_id" FROM "__g" WHERE "sku_id" = "__max0" UNION ALL SELECT "customer_id", "sku_id", "changed_at", "load_id" FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "customer_id", "changed_at" ORDER BY "__s0" DESC NULLS LAST, "load_id") AS "__rn" FROM (SELECT "r".*, "s0"."sku" AS "__s0" FROM (SELECT "r".* FROM "__r" AS "r" JOIN "__g" AS "g" ON "r"."customer_id" = "g"."customer_id" AND "r"."changed_at" = "g"."changed_at" WHERE "g"."sku_id" <> "g"."__max0") AS "r" JOIN "anchor"."Sku" AS "s0" ON "s0"."id" = "r"."sku_id") AS "r") AS "d" WHERE "__rn" = 1;

CREATE OR REPLACE TEMPORARY TABLE "__losers_3" AS SELECT "a"."customer_id", "a"."changed_at" FROM (SELECT "r".*, "s0"."sku" AS "__s0" FROM (SELECT "a".* FROM "__recent_3" AS "a" WHERE EXISTS(SELECT 1 FROM "__fresh_3" AS "w" WHERE "w"."customer_id" = "a"."customer_id" AND "w"."changed_at" = "a"."changed_at" AND ("w"."sku_id" <> "a"."sku_id"))) AS "r" JOIN "anchor"."Sku" AS "s0" ON "s0"."id" = "r"."sku_id") AS "a" JOIN (SELECT "r".*, "s0"."sku" AS "__s0" FROM (SELECT "w".* FROM "__fresh_3" AS "w" WHERE EXISTS(SELECT 1 FROM "__recent_3" AS "a" WHERE "w"."customer_id" = "a"."customer_id" AND "w"."changed_at" = "a"."changed_at" AND ("w"."sku_id" <> "a"."sku_id"))) AS "r" JOIN "anchor"."Sku" AS "s0" ON "s0"."id" = "r"."sku_id") AS "w" ON "w"."customer_id" = "a"."customer_id" AND "w"."changed_at" = "a"."changed_at" WHERE (("w"."__s0" > "a"."__s0"));

DELETE FROM "anchor"."Customer_Sku" AS "a" WHERE EXISTS(SELECT 1 FROM "__losers_3" AS "w" WHERE "w"."customer_id" = "a"."customer_id" AND "w"."changed_at" = "a"."changed_at");

DELETE FROM "__recent_3" AS "a" WHERE EXISTS(SELECT 1 FROM "__losers_3" AS "w" WHERE "w"."customer_id" = "a"."customer_id" AND "w"."changed_at" = "a"."changed_at");

DROP TABLE "__losers_3";

CREATE OR REPLACE TEMPORARY TABLE "__inserted_3" AS SELECT "customer_id", "sku_id", "changed_at", "load_id" FROM (SELECT *, (LAG("sku_id") OVER (PARTITION BY "customer_id" ORDER BY "changed_at") IS DISTINCT FROM "sku_id") AS "__change" FROM (SELECT "customer_id", "sku_id", "changed_at", "load_id", 0 AS "fresh" FROM "__recent_3" UNION ALL SELECT "o"."customer_id", "o"."sku_id", "o"."changed_at", "o"."load_id", 1 AS "fresh" FROM "__fresh_3" AS "o" WHERE NOT EXISTS(SELECT 1 FROM "__recent_3" AS "x" WHERE "x"."customer_id" = "o"."customer_id" AND "x"."changed_at" = "o"."changed_at")) AS "m") AS "p" WHERE "p"."fresh" = 1 AND "p"."__change";

INSERT INTO "anchor"."Customer_Sku" ("customer_id", "sku_id", "changed_at", "load_id") SELECT "customer_id", "sku_id", "changed_at", "load_id" FROM "__inserted_3";

INSERT INTO "meta"."compiled_loads" ("step", "target", "model", "load_id") SELECT DISTINCT 'anchor', 'Customer_Sku', 'Line', "s"."load_id" FROM "staging"."Line" AS "s" WHERE NOT "s"."load_id" IN (SELECT "j"."load_id" FROM "meta"."compiled_loads" AS "j" WHERE "j"."step" = 'anchor' AND "j"."target" = 'Customer_Sku' AND "j"."model" = 'Line');

DROP TABLE "__rows_3";

DROP TABLE "__obs_3";

DROP TABLE "__bounds_3";

DROP TABLE "__recent_3";

DROP TABLE "__late_3";

DROP TABLE "__fresh_3";

DROP TABLE "__inserted_3";

DELETE FROM "anchor"."Customer_current";

DROP TABLE IF EXISTS "__serving_ids";

CREATE TEMPORARY TABLE "__serving_ids" AS SELECT DISTINCT "id" FROM (SELECT "id" FROM "anchor"."Customer") AS "i";

DELETE FROM "anchor"."Customer_current" WHERE "id" IN (SELECT "id" FROM "__serving_ids");

INSERT INTO "anchor"."Customer_current" ("id", "userId", "Total", "__at_Total", "__prev_Total", "__prev_at_Total", "firstDay", "__at_firstDay", "email", "__at_email", "__first_Customer_Total", "__first_Customer_firstDay", "__first_Customer_email", "__first_Customer_Sku") SELECT "e"."id", "e"."userId", "c0"."value", "c0"."at", "c0"."prev", "c0"."prev_at", "c1"."value", "c1"."at", "c2"."value", "c2"."at", "f0"."first", "f1"."first", "f2"."first", "f3"."first" FROM "anchor"."Customer" AS "e" JOIN "__serving_ids" AS "ids" ON "ids"."id" = "e"."id" LEFT JOIN (SELECT "r"."id", "r"."value", "r"."at", "r"."prev", "r"."prev_at" FROM (SELECT "x"."id", "x"."value", "x"."at", LEAD("x"."value") OVER (PARTITION BY "x"."id" ORDER BY "x"."at" DESC NULLS LAST) AS "prev", LEAD("x"."at") OVER (PARTITION BY "x"."id" ORDER BY "x"."at" DESC NULLS LAST) AS "prev_at", ROW_NUMBER() OVER (PARTITION BY "x"."id" ORDER BY "x"."at" DESC NULLS LAST) AS "__rn" FROM (SELECT "a"."id", "a"."value" AS "value", "a"."changed_at" AS "at" FROM "anchor"."Customer_Total" AS "a" WHERE "a"."id" IN (SELECT "id" FROM "__serving_ids")) AS "x") AS "r" WHERE "r"."__rn" = 1) AS "c0" ON "c0"."id" = "e"."id" LEFT JOIN (SELECT "a"."id", MIN_BY("a"."value", "a"."changed_at") AS "value", MIN("a"."changed_at") AS "at" FROM "anchor"."Customer_firstDay" AS "a" WHERE "a"."id" IN (SELECT "id" FROM "__serving_ids") GROUP BY "a"."id") AS "c1" ON "c1"."id" = "e"."id" LEFT JOIN (SELECT "a"."id", MAX_BY("a"."value", "a"."changed_at") AS "value", MAX("a"."changed_at") AS "at" FROM "anchor"."Customer_email" AS "a" WHERE "a"."id" IN (SELECT "id" FROM "__serving_ids") GROUP BY "a"."id") AS "c2" ON "c2"."id" = "e"."id" LEFT JOIN (SELECT "a"."id" AS "id", MIN("a"."changed_at") AS "first" FROM "anchor"."Customer_Total" AS "a" WHERE "a"."id" IN (SELECT "id" FROM "__serving_ids") GROUP BY "a"."id") AS "f0" ON "f0"."id" = "e"."id" LEFT JOIN (SELECT "a"."id" AS "id", MIN("a"."changed_at") AS "first" FROM "anchor"."Customer_firstDay" AS "a" WHERE "a"."id" IN (SELECT "id" FROM "__serving_ids") GROUP BY "a"."id") AS "f1" ON "f1"."id" = "e"."id" LEFT JOIN (SELECT "a"."id" AS "id", MIN("a"."changed_at") AS "first" FROM "anchor"."Customer_email" AS "a" WHERE "a"."id" IN (SELECT "id" FROM "__serving_ids") GROUP BY "a"."id") AS "f2" ON "f2"."id" = "e"."id" LEFT JOIN (SELECT "a"."customer_id" AS "id", MIN("a"."changed_at") AS "first" FROM "anchor"."Customer_Sku" AS "a" WHERE "a"."customer_id" IN (SELECT "id" FROM "__serving_ids") GROUP BY "a"."customer_id") AS "f3" ON "f3"."id" = "e"."id";

DROP TABLE "__serving_ids";

DELETE FROM "anchor"."Sku_current";

DROP TABLE IF EXISTS "__serving_ids";

CREATE TEMPORARY TABLE "__serving_ids" AS SELECT DISTINCT "id" FROM (SELECT "id" FROM "anchor"."Sku") AS "i";

DELETE FROM "anchor"."Sku_current" WHERE "id" IN (SELECT "id" FROM "__serving_ids");

INSERT INTO "anchor"."Sku_current" ("id", "sku", "__first_Customer_Sku") SELECT "e"."id", "e"."sku", "f0"."first" FROM "anchor"."Sku" AS "e" JOIN "__serving_ids" AS "ids" ON "ids"."id" = "e"."id" LEFT JOIN (SELECT "a"."sku_id" AS "id", MIN("a"."changed_at") AS "first" FROM "anchor"."Customer_Sku" AS "a" WHERE "a"."sku_id" IN (SELECT "id" FROM "__serving_ids") GROUP BY "a"."sku_id") AS "f0" ON "f0"."id" = "e"."id";

DROP TABLE "__serving_ids";

CREATE OR REPLACE TABLE "marts"."latest" AS SELECT "c"."userId", "c"."Total", "s"."total" AS "spent" FROM "anchor"."Customer_latest" AS "c" LEFT JOIN "marts"."spend" AS "s" USING ("userId");

CREATE OR REPLACE VIEW "marts"."top" AS SELECT * FROM "marts"."latest" WHERE "spent" > 0;
