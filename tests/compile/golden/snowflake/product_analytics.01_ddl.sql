CREATE SCHEMA IF NOT EXISTS "raw";

CREATE SCHEMA IF NOT EXISTS "staging";

CREATE SCHEMA IF NOT EXISTS "anchor";

CREATE SCHEMA IF NOT EXISTS "marts";

CREATE SCHEMA IF NOT EXISTS "meta";

CREATE TABLE IF NOT EXISTS "raw"."amplitude_events" ("load_id" BIGINT NOT NULL, "source" VARCHAR NOT NULL, "stream" VARCHAR NOT NULL, "origin" VARCHAR NOT NULL, "line_no" BIGINT NOT NULL, "received_at" TIMESTAMPNTZ NOT NULL, "record" VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS "raw"."__landing_amplitude_events" ("origin" VARCHAR, "line_no" BIGINT, "record" VARCHAR);

CREATE TABLE IF NOT EXISTS "raw"."costs_daily" ("load_id" BIGINT NOT NULL, "source" VARCHAR NOT NULL, "stream" VARCHAR NOT NULL, "origin" VARCHAR NOT NULL, "line_no" BIGINT NOT NULL, "received_at" TIMESTAMPNTZ NOT NULL, "record" VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS "raw"."__landing_costs_daily" ("origin" VARCHAR, "line_no" BIGINT, "record" VARCHAR);

CREATE TABLE IF NOT EXISTS "raw"."backend_events" ("load_id" BIGINT NOT NULL, "source" VARCHAR NOT NULL, "stream" VARCHAR NOT NULL, "origin" VARCHAR NOT NULL, "line_no" BIGINT NOT NULL, "received_at" TIMESTAMPNTZ NOT NULL, "record" VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS "raw"."__landing_backend_events" ("origin" VARCHAR, "line_no" BIGINT, "record" VARCHAR);

CREATE TABLE IF NOT EXISTS "raw"."backend_payments" ("load_id" BIGINT NOT NULL, "source" VARCHAR NOT NULL, "stream" VARCHAR NOT NULL, "origin" VARCHAR NOT NULL, "line_no" BIGINT NOT NULL, "received_at" TIMESTAMPNTZ NOT NULL, "record" VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS "raw"."__landing_backend_payments" ("origin" VARCHAR, "line_no" BIGINT, "record" VARCHAR);

CREATE TABLE IF NOT EXISTS "raw"."qa_groups" ("load_id" BIGINT NOT NULL, "source" VARCHAR NOT NULL, "stream" VARCHAR NOT NULL, "origin" VARCHAR NOT NULL, "line_no" BIGINT NOT NULL, "received_at" TIMESTAMPNTZ NOT NULL, "record" VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS "raw"."__landing_qa_groups" ("origin" VARCHAR, "line_no" BIGINT, "record" VARCHAR);

CREATE TABLE IF NOT EXISTS "raw"."qa_total_scores" ("load_id" BIGINT NOT NULL, "source" VARCHAR NOT NULL, "stream" VARCHAR NOT NULL, "origin" VARCHAR NOT NULL, "line_no" BIGINT NOT NULL, "received_at" TIMESTAMPNTZ NOT NULL, "record" VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS "raw"."__landing_qa_total_scores" ("origin" VARCHAR, "line_no" BIGINT, "record" VARCHAR);

CREATE TABLE IF NOT EXISTS "raw"."accounts_users" ("load_id" BIGINT NOT NULL, "source" VARCHAR NOT NULL, "stream" VARCHAR NOT NULL, "origin" VARCHAR NOT NULL, "line_no" BIGINT NOT NULL, "received_at" TIMESTAMPNTZ NOT NULL, "record" VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS "raw"."__landing_accounts_users" ("origin" VARCHAR, "line_no" BIGINT, "record" VARCHAR);

CREATE TABLE IF NOT EXISTS "raw"."clicks_clicks" ("load_id" BIGINT NOT NULL, "source" VARCHAR NOT NULL, "stream" VARCHAR NOT NULL, "origin" VARCHAR NOT NULL, "line_no" BIGINT NOT NULL, "received_at" TIMESTAMPNTZ NOT NULL, "record" VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS "raw"."__landing_clicks_clicks" ("origin" VARCHAR, "line_no" BIGINT, "record" VARCHAR);

CREATE TABLE IF NOT EXISTS "raw"."signups_registrations" ("load_id" BIGINT NOT NULL, "source" VARCHAR NOT NULL, "stream" VARCHAR NOT NULL, "origin" VARCHAR NOT NULL, "line_no" BIGINT NOT NULL, "received_at" TIMESTAMPNTZ NOT NULL, "record" VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS "raw"."__landing_signups_registrations" ("origin" VARCHAR, "line_no" BIGINT, "record" VARCHAR);

CREATE TABLE IF NOT EXISTS "raw"."app_events" ("load_id" BIGINT NOT NULL, "source" VARCHAR NOT NULL, "stream" VARCHAR NOT NULL, "origin" VARCHAR NOT NULL, "line_no" BIGINT NOT NULL, "received_at" TIMESTAMPNTZ NOT NULL, "record" VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS "raw"."__landing_app_events" ("origin" VARCHAR, "line_no" BIGINT, "record" VARCHAR);

CREATE TABLE IF NOT EXISTS "staging"."events" ("load_id" BIGINT NOT NULL, "event_uuid" VARCHAR, "insert_id" VARCHAR, "event_type" VARCHAR, "event_time" TIMESTAMPNTZ, "server_upload_time" TIMESTAMPNTZ, "user_id" VARCHAR, "device_id" VARCHAR, "amplitude_id" BIGINT, "session_id" BIGINT, "platform" VARCHAR, "os_name" VARCHAR, "device_model" VARCHAR, "country" VARCHAR, "city" VARCHAR, "ip_address" VARCHAR, "version_name" VARCHAR, "paying" BOOLEAN, "amount" DOUBLE, "plan" VARCHAR, "utm_campaign" VARCHAR, "utm_source" VARCHAR, "event_properties" VARIANT, "user_properties" VARIANT);

CREATE TABLE IF NOT EXISTS "staging"."purchases" ("load_id" BIGINT NOT NULL, "event_uuid" VARCHAR, "user_id" VARCHAR, "event_time" TIMESTAMPNTZ, "amount" DOUBLE, "currency" VARCHAR, "country" VARCHAR);

CREATE TABLE IF NOT EXISTS "staging"."purchase_items" ("load_id" BIGINT NOT NULL, "item_index" INT, "event_uuid" VARCHAR, "item" INT);

CREATE TABLE IF NOT EXISTS "staging"."wagers" ("load_id" BIGINT NOT NULL, "event_uuid" VARCHAR, "event_type" VARCHAR, "user_id" VARCHAR, "event_time" TIMESTAMPNTZ, "stake" DOUBLE, "odds" DOUBLE, "market" VARCHAR, "deposit" DOUBLE, "method" VARCHAR);

CREATE TABLE IF NOT EXISTS "staging"."payments" ("load_id" BIGINT NOT NULL, "payment_id" VARCHAR, "user_id" VARCHAR, "occurred_at" TIMESTAMPNTZ, "amount" DECIMAL(12, 2), "currency" VARCHAR, "method" VARCHAR, "status" VARCHAR, "plan" VARCHAR);

CREATE TABLE IF NOT EXISTS "staging"."subscription_changes" ("load_id" BIGINT NOT NULL, "change_id" VARCHAR, "user_id" VARCHAR, "occurred_at" TIMESTAMPNTZ, "from_plan" VARCHAR, "to_plan" VARCHAR, "reason" VARCHAR, "mrr" DECIMAL(10, 2));

CREATE TABLE IF NOT EXISTS "staging"."support_tickets" ("load_id" BIGINT NOT NULL, "ticket_id" VARCHAR, "user_id" VARCHAR, "occurred_at" TIMESTAMPNTZ, "priority" VARCHAR, "channel" VARCHAR, "topic" VARCHAR, "first_response_minutes" INT);

CREATE TABLE IF NOT EXISTS "staging"."agent_groups" ("load_id" BIGINT NOT NULL, "id_index" INT, "agent_id" VARCHAR, "group_id" VARCHAR, "group_name" VARCHAR, "agent_name" VARCHAR, "agent_email" VARCHAR, "available" BOOLEAN);

CREATE TABLE IF NOT EXISTS "staging"."grades" ("load_id" BIGINT NOT NULL, "gradable_id" VARCHAR, "agent_id" VARCHAR, "agent_email" VARCHAR, "grader" VARCHAR, "date_graded" TIMESTAMPNTZ, "rubric_score" INT, "max_rubric_score" INT);

CREATE TABLE IF NOT EXISTS "staging"."accounts" ("load_id" BIGINT NOT NULL, "user_id" VARCHAR, "email" VARCHAR, "city" VARCHAR, "plan" VARCHAR, "scanned_at" TIMESTAMPNTZ);

CREATE TABLE IF NOT EXISTS "staging"."campaign_costs" ("load_id" BIGINT NOT NULL, "day" DATE, "utm_campaign" VARCHAR, "utm_source" VARCHAR, "cost" DECIMAL(12, 2), "clicks" BIGINT);

CREATE TABLE IF NOT EXISTS "staging"."ad_clicks" ("load_id" BIGINT NOT NULL, "click_id" VARCHAR, "clicked_at" TIMESTAMPNTZ, "ip" VARCHAR, "ua" VARCHAR, "device_id" VARCHAR, "campaign" VARCHAR, "sub_id" VARCHAR, "country" VARCHAR, "platform" VARCHAR);

CREATE TABLE IF NOT EXISTS "staging"."signups" ("load_id" BIGINT NOT NULL, "user_id" VARCHAR, "registered_at" TIMESTAMPNTZ, "click_id" VARCHAR, "ip" VARCHAR, "user_agent" VARCHAR, "device_id" VARCHAR, "device_model" VARCHAR, "os_version" VARCHAR, "campaign" VARCHAR, "sub_id" VARCHAR, "country" VARCHAR, "platform" VARCHAR);

CREATE TABLE IF NOT EXISTS "staging"."app_events" ("load_id" BIGINT NOT NULL, "event_id" VARCHAR, "user_id" VARCHAR, "event_time" TIMESTAMPNTZ, "event_type" VARCHAR, "ip" VARCHAR, "device_id" VARCHAR, "user_agent" VARCHAR, "country" VARCHAR, "platform" VARCHAR, "channel" VARCHAR, "revenue" DOUBLE);

CREATE TABLE IF NOT EXISTS "anchor"."User" ("id" BIGINT NOT NULL, "user_id" VARCHAR NOT NULL, "load_id" BIGINT NOT NULL, "loaded_at" TIMESTAMPNTZ NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Device" ("id" BIGINT NOT NULL, "device_id" VARCHAR NOT NULL, "load_id" BIGINT NOT NULL, "loaded_at" TIMESTAMPNTZ NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Session" ("id" BIGINT NOT NULL, "session_id" BIGINT NOT NULL, "load_id" BIGINT NOT NULL, "loaded_at" TIMESTAMPNTZ NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Campaign" ("id" BIGINT NOT NULL, "utm_campaign" VARCHAR NOT NULL, "load_id" BIGINT NOT NULL, "loaded_at" TIMESTAMPNTZ NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Account" ("id" BIGINT NOT NULL, "user_id" VARCHAR NOT NULL, "load_id" BIGINT NOT NULL, "loaded_at" TIMESTAMPNTZ NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Country" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "load_id" BIGINT NOT NULL, "loaded_at" TIMESTAMPNTZ NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Platform" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "load_id" BIGINT NOT NULL, "loaded_at" TIMESTAMPNTZ NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."User_country" ("id" BIGINT NOT NULL, "value" BIGINT NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."User_city" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."User_app_version" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."User_plan" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."User_first_platform" ("id" BIGINT NOT NULL, "value" BIGINT NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Device_model" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Device_os" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Device_platform" ("id" BIGINT NOT NULL, "value" BIGINT NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Session_app_version" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Campaign_source" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Account_city" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Account_plan" ("id" BIGINT NOT NULL, "value" VARCHAR NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Device_User" ("device_id" BIGINT NOT NULL, "user_id" BIGINT NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."Session_User" ("session_id" BIGINT NOT NULL, "user_id" BIGINT NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."User_Campaign" ("user_id" BIGINT NOT NULL, "campaign_id" BIGINT NOT NULL, "changed_at" TIMESTAMPNTZ NOT NULL, "load_id" BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS "anchor"."User_current" ("id" BIGINT NOT NULL, "user_id" VARCHAR, "country" VARCHAR, "__at_country" TIMESTAMPNTZ, "__prev_country" VARCHAR, "__prev_at_country" TIMESTAMPNTZ, "city" VARCHAR, "__at_city" TIMESTAMPNTZ, "__prev_city" VARCHAR, "__prev_at_city" TIMESTAMPNTZ, "app_version" VARCHAR, "__at_app_version" TIMESTAMPNTZ, "__prev_app_version" VARCHAR, "__prev_at_app_version" TIMESTAMPNTZ, "plan" VARCHAR, "__at_plan" TIMESTAMPNTZ, "first_platform" VARCHAR, "__at_first_platform" TIMESTAMPNTZ, "__first_User_country" TIMESTAMPNTZ, "__first_User_city" TIMESTAMPNTZ, "__first_User_app_version" TIMESTAMPNTZ, "__first_User_plan" TIMESTAMPNTZ, "__first_User_first_platform" TIMESTAMPNTZ, "__first_Device_User" TIMESTAMPNTZ, "__first_Session_User" TIMESTAMPNTZ, "__first_User_Campaign" TIMESTAMPNTZ);

CREATE TABLE IF NOT EXISTS "anchor"."Device_current" ("id" BIGINT NOT NULL, "device_id" VARCHAR, "model" VARCHAR, "__at_model" TIMESTAMPNTZ, "os" VARCHAR, "__at_os" TIMESTAMPNTZ, "__prev_os" VARCHAR, "__prev_at_os" TIMESTAMPNTZ, "platform" VARCHAR, "__at_platform" TIMESTAMPNTZ, "__first_Device_model" TIMESTAMPNTZ, "__first_Device_os" TIMESTAMPNTZ, "__first_Device_platform" TIMESTAMPNTZ, "__first_Device_User" TIMESTAMPNTZ);

CREATE TABLE IF NOT EXISTS "anchor"."Session_current" ("id" BIGINT NOT NULL, "session_id" BIGINT, "app_version" VARCHAR, "__at_app_version" TIMESTAMPNTZ, "__first_Session_app_version" TIMESTAMPNTZ, "__first_Session_User" TIMESTAMPNTZ);

CREATE TABLE IF NOT EXISTS "anchor"."Campaign_current" ("id" BIGINT NOT NULL, "utm_campaign" VARCHAR, "source" VARCHAR, "__at_source" TIMESTAMPNTZ, "__first_Campaign_source" TIMESTAMPNTZ, "__first_User_Campaign" TIMESTAMPNTZ);

CREATE TABLE IF NOT EXISTS "anchor"."Account_current" ("id" BIGINT NOT NULL, "user_id" VARCHAR, "city" VARCHAR, "__at_city" TIMESTAMPNTZ, "__prev_city" VARCHAR, "__prev_at_city" TIMESTAMPNTZ, "plan" VARCHAR, "__at_plan" TIMESTAMPNTZ, "__prev_plan" VARCHAR, "__prev_at_plan" TIMESTAMPNTZ, "__first_Account_city" TIMESTAMPNTZ, "__first_Account_plan" TIMESTAMPNTZ);

CREATE TABLE IF NOT EXISTS "meta"."compiled_loads" ("step" VARCHAR NOT NULL, "target" VARCHAR NOT NULL, "model" VARCHAR NOT NULL, "load_id" BIGINT NOT NULL);
