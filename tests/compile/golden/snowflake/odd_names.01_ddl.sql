CREATE SCHEMA IF NOT EXISTS "raw";

CREATE SCHEMA IF NOT EXISTS "staging";

CREATE SCHEMA IF NOT EXISTS "anchor";

CREATE SCHEMA IF NOT EXISTS "marts";

CREATE SCHEMA IF NOT EXISTS "meta";

CREATE TABLE IF NOT EXISTS "raw"."shop_records" ("load_id" BIGINT NOT NULL, "source" VARCHAR NOT NULL, "stream" VARCHAR NOT NULL, "origin" VARCHAR NOT NULL, "line_no" BIGINT NOT NULL, "received_at" TIMESTAMPNTZ NOT NULL, "record" VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS "raw"."__landing_shop_records" ("origin" VARCHAR, "line_no" BIGINT, "record" VARCHAR);

CREATE TABLE IF NOT EXISTS "staging"."Order" ("load_id" BIGINT NOT NULL, "select" BIGINT, "userId" VARCHAR, "from" TIMESTAMPNTZ, "total" DECIMAL(12, 2), "email" VARCHAR, "ref" VARCHAR, "day" DATE, "payload" VARIANT);

CREATE TABLE IF NOT EXISTS "staging"."Line" ("load_id" BIGINT NOT NULL, "line_no_" INT, "select" BIGINT, "sku" VARCHAR, "userId" VARCHAR, "from" TIMESTAMPNTZ);

CREATE TABLE IF NOT EXISTS "anchor"."Customer" ("id" BIGINT NOT NULL, "userId" VARCHAR NOT NULL, "load_id" BIGINT NOT NULL, "loaded_at" TIMESTAMPNTZ NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Sku" ("id" BIGINT NOT NULL, "sku" VARCHAR NOT NULL, "load_id" BIGINT NOT NULL, "loaded_at" TIMESTAMPNTZ NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Customer_Total" ("id" BIGINT NOT NULL, "value" DECIMAL(12, 2) NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Customer_firstDay" ("id" BIGINT NOT NULL, "value" DATE NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Customer_email" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Customer_Sku" ("customer_id" BIGINT NOT NULL, "sku_id" BIGINT NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Customer_current" ("id" BIGINT NOT NULL, "userId" VARCHAR, "Total" DECIMAL(12, 2), "__at_Total" TIMESTAMPNTZ, "__prev_Total" DECIMAL(12, 2), "__prev_at_Total" TIMESTAMPNTZ, "firstDay" DATE, "__at_firstDay" TIMESTAMPNTZ, "email" VARCHAR, "__at_email" TIMESTAMPNTZ, "__first_Customer_Total" TIMESTAMPNTZ, "__first_Customer_firstDay" TIMESTAMPNTZ, "__first_Customer_email" TIMESTAMPNTZ, "__first_Customer_Sku" TIMESTAMPNTZ);

CREATE TABLE IF NOT EXISTS "anchor"."Sku_current" ("id" BIGINT NOT NULL, "sku" VARCHAR, "__first_Customer_Sku" TIMESTAMPNTZ);

CREATE TABLE IF NOT EXISTS "meta"."compiled_loads" ("step" VARCHAR NOT NULL, "target" VARCHAR NOT NULL, "model" VARCHAR NOT NULL, "load_id" BIGINT NOT NULL);
