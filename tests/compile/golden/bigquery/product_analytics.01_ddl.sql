CREATE SCHEMA IF NOT EXISTS `raw`;

CREATE SCHEMA IF NOT EXISTS `staging`;

CREATE SCHEMA IF NOT EXISTS `anchor`;

CREATE SCHEMA IF NOT EXISTS `marts`;

CREATE SCHEMA IF NOT EXISTS `meta`;

CREATE TABLE IF NOT EXISTS `raw`.`amplitude_events` (`load_id` INT64 NOT NULL, `source` STRING NOT NULL, `stream` STRING NOT NULL, `origin` STRING NOT NULL, `line_no` INT64 NOT NULL, `received_at` DATETIME NOT NULL, `record` STRING NOT NULL);

CREATE TABLE IF NOT EXISTS `raw`.`__landing_amplitude_events` (`record` STRING);

CREATE TABLE IF NOT EXISTS `raw`.`costs_daily` (`load_id` INT64 NOT NULL, `source` STRING NOT NULL, `stream` STRING NOT NULL, `origin` STRING NOT NULL, `line_no` INT64 NOT NULL, `received_at` DATETIME NOT NULL, `record` STRING NOT NULL);

CREATE TABLE IF NOT EXISTS `raw`.`__landing_costs_daily` (`record` STRING);

CREATE TABLE IF NOT EXISTS `raw`.`backend_events` (`load_id` INT64 NOT NULL, `source` STRING NOT NULL, `stream` STRING NOT NULL, `origin` STRING NOT NULL, `line_no` INT64 NOT NULL, `received_at` DATETIME NOT NULL, `record` STRING NOT NULL);

CREATE TABLE IF NOT EXISTS `raw`.`__landing_backend_events` (`record` STRING);

CREATE TABLE IF NOT EXISTS `raw`.`backend_payments` (`load_id` INT64 NOT NULL, `source` STRING NOT NULL, `stream` STRING NOT NULL, `origin` STRING NOT NULL, `line_no` INT64 NOT NULL, `received_at` DATETIME NOT NULL, `record` STRING NOT NULL);

CREATE TABLE IF NOT EXISTS `raw`.`__landing_backend_payments` (`record` STRING);

CREATE TABLE IF NOT EXISTS `raw`.`qa_groups` (`load_id` INT64 NOT NULL, `source` STRING NOT NULL, `stream` STRING NOT NULL, `origin` STRING NOT NULL, `line_no` INT64 NOT NULL, `received_at` DATETIME NOT NULL, `record` STRING NOT NULL);

CREATE TABLE IF NOT EXISTS `raw`.`__landing_qa_groups` (`record` STRING);

CREATE TABLE IF NOT EXISTS `raw`.`qa_total_scores` (`load_id` INT64 NOT NULL, `source` STRING NOT NULL, `stream` STRING NOT NULL, `origin` STRING NOT NULL, `line_no` INT64 NOT NULL, `received_at` DATETIME NOT NULL, `record` STRING NOT NULL);

CREATE TABLE IF NOT EXISTS `raw`.`__landing_qa_total_scores` (`record` STRING);

CREATE TABLE IF NOT EXISTS `raw`.`accounts_users` (`load_id` INT64 NOT NULL, `source` STRING NOT NULL, `stream` STRING NOT NULL, `origin` STRING NOT NULL, `line_no` INT64 NOT NULL, `received_at` DATETIME NOT NULL, `record` STRING NOT NULL);

CREATE TABLE IF NOT EXISTS `raw`.`__landing_accounts_users` (`record` STRING);

CREATE TABLE IF NOT EXISTS `raw`.`clicks_clicks` (`load_id` INT64 NOT NULL, `source` STRING NOT NULL, `stream` STRING NOT NULL, `origin` STRING NOT NULL, `line_no` INT64 NOT NULL, `received_at` DATETIME NOT NULL, `record` STRING NOT NULL);

CREATE TABLE IF NOT EXISTS `raw`.`__landing_clicks_clicks` (`record` STRING);

CREATE TABLE IF NOT EXISTS `raw`.`signups_registrations` (`load_id` INT64 NOT NULL, `source` STRING NOT NULL, `stream` STRING NOT NULL, `origin` STRING NOT NULL, `line_no` INT64 NOT NULL, `received_at` DATETIME NOT NULL, `record` STRING NOT NULL);

CREATE TABLE IF NOT EXISTS `raw`.`__landing_signups_registrations` (`record` STRING);

CREATE TABLE IF NOT EXISTS `raw`.`app_events` (`load_id` INT64 NOT NULL, `source` STRING NOT NULL, `stream` STRING NOT NULL, `origin` STRING NOT NULL, `line_no` INT64 NOT NULL, `received_at` DATETIME NOT NULL, `record` STRING NOT NULL);

CREATE TABLE IF NOT EXISTS `raw`.`__landing_app_events` (`record` STRING);

CREATE TABLE IF NOT EXISTS `staging`.`events` (`load_id` INT64 NOT NULL, `event_uuid` STRING, `insert_id` STRING, `event_type` STRING, `event_time` DATETIME, `server_upload_time` DATETIME, `user_id` STRING, `device_id` STRING, `amplitude_id` INT64, `session_id` INT64, `platform` STRING, `os_name` STRING, `device_model` STRING, `country` STRING, `city` STRING, `ip_address` STRING, `version_name` STRING, `paying` BOOL, `amount` FLOAT64, `plan` STRING, `utm_campaign` STRING, `utm_source` STRING, `event_properties` JSON, `user_properties` JSON);

CREATE TABLE IF NOT EXISTS `staging`.`purchases` (`load_id` INT64 NOT NULL, `event_uuid` STRING, `user_id` STRING, `event_time` DATETIME, `amount` FLOAT64, `currency` STRING, `country` STRING);

CREATE TABLE IF NOT EXISTS `staging`.`purchase_items` (`load_id` INT64 NOT NULL, `item_index` INT64, `event_uuid` STRING, `item` INT64);

CREATE TABLE IF NOT EXISTS `staging`.`wagers` (`load_id` INT64 NOT NULL, `event_uuid` STRING, `event_type` STRING, `user_id` STRING, `event_time` DATETIME, `stake` FLOAT64, `odds` FLOAT64, `market` STRING, `deposit` FLOAT64, `method` STRING);

CREATE TABLE IF NOT EXISTS `staging`.`payments` (`load_id` INT64 NOT NULL, `payment_id` STRING, `user_id` STRING, `occurred_at` DATETIME, `amount` NUMERIC(12, 2), `currency` STRING, `method` STRING, `status` STRING, `plan` STRING);

CREATE TABLE IF NOT EXISTS `staging`.`subscription_changes` (`load_id` INT64 NOT NULL, `change_id` STRING, `user_id` STRING, `occurred_at` DATETIME, `from_plan` STRING, `to_plan` STRING, `reason` STRING, `mrr` NUMERIC(10, 2));

CREATE TABLE IF NOT EXISTS `staging`.`support_tickets` (`load_id` INT64 NOT NULL, `ticket_id` STRING, `user_id` STRING, `occurred_at` DATETIME, `priority` STRING, `channel` STRING, `topic` STRING, `first_response_minutes` INT64);

CREATE TABLE IF NOT EXISTS `staging`.`agent_groups` (`load_id` INT64 NOT NULL, `id_index` INT64, `agent_id` STRING, `group_id` STRING, `group_name` STRING, `agent_name` STRING, `agent_email` STRING, `available` BOOL);

CREATE TABLE IF NOT EXISTS `staging`.`grades` (`load_id` INT64 NOT NULL, `gradable_id` STRING, `agent_id` STRING, `agent_email` STRING, `grader` STRING, `date_graded` DATETIME, `rubric_score` INT64, `max_rubric_score` INT64);

CREATE TABLE IF NOT EXISTS `staging`.`accounts` (`load_id` INT64 NOT NULL, `user_id` STRING, `email` STRING, `city` STRING, `plan` STRING, `scanned_at` DATETIME);

CREATE TABLE IF NOT EXISTS `staging`.`campaign_costs` (`load_id` INT64 NOT NULL, `day` DATE, `utm_campaign` STRING, `utm_source` STRING, `cost` NUMERIC(12, 2), `clicks` INT64);

CREATE TABLE IF NOT EXISTS `staging`.`ad_clicks` (`load_id` INT64 NOT NULL, `click_id` STRING, `clicked_at` DATETIME, `ip` STRING, `ua` STRING, `device_id` STRING, `campaign` STRING, `sub_id` STRING, `country` STRING, `platform` STRING);

CREATE TABLE IF NOT EXISTS `staging`.`signups` (`load_id` INT64 NOT NULL, `user_id` STRING, `registered_at` DATETIME, `click_id` STRING, `ip` STRING, `user_agent` STRING, `device_id` STRING, `device_model` STRING, `os_version` STRING, `campaign` STRING, `sub_id` STRING, `country` STRING, `platform` STRING);

CREATE TABLE IF NOT EXISTS `staging`.`app_events` (`load_id` INT64 NOT NULL, `event_id` STRING, `user_id` STRING, `event_time` DATETIME, `event_type` STRING, `ip` STRING, `device_id` STRING, `user_agent` STRING, `country` STRING, `platform` STRING, `channel` STRING, `revenue` FLOAT64);

CREATE TABLE IF NOT EXISTS `anchor`.`User` (`id` INT64 NOT NULL, `user_id` STRING NOT NULL, `load_id` INT64 NOT NULL, `loaded_at` DATETIME NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Device` (`id` INT64 NOT NULL, `device_id` STRING NOT NULL, `load_id` INT64 NOT NULL, `loaded_at` DATETIME NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Session` (`id` INT64 NOT NULL, `session_id` INT64 NOT NULL, `load_id` INT64 NOT NULL, `loaded_at` DATETIME NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Campaign` (`id` INT64 NOT NULL, `utm_campaign` STRING NOT NULL, `load_id` INT64 NOT NULL, `loaded_at` DATETIME NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Account` (`id` INT64 NOT NULL, `user_id` STRING NOT NULL, `load_id` INT64 NOT NULL, `loaded_at` DATETIME NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Country` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `load_id` INT64 NOT NULL, `loaded_at` DATETIME NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Platform` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `load_id` INT64 NOT NULL, `loaded_at` DATETIME NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`User_country` (`id` INT64 NOT NULL, `value` INT64 NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`User_city` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`User_app_version` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`User_plan` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`User_first_platform` (`id` INT64 NOT NULL, `value` INT64 NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Device_model` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Device_os` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Device_platform` (`id` INT64 NOT NULL, `value` INT64 NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Session_app_version` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Campaign_source` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Account_city` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Account_plan` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Device_User` (`device_id` INT64 NOT NULL, `user_id` INT64 NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Session_User` (`session_id` INT64 NOT NULL, `user_id` INT64 NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`User_Campaign` (`user_id` INT64 NOT NULL, `campaign_id` INT64 NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`User_current` (`id` INT64 NOT NULL, `user_id` STRING, `country` STRING, `__at_country` DATETIME, `__prev_country` STRING, `__prev_at_country` DATETIME, `city` STRING, `__at_city` DATETIME, `__prev_city` STRING, `__prev_at_city` DATETIME, `app_version` STRING, `__at_app_version` DATETIME, `__prev_app_version` STRING, `__prev_at_app_version` DATETIME, `plan` STRING, `__at_plan` DATETIME, `first_platform` STRING, `__at_first_platform` DATETIME, `__first_User_country` DATETIME, `__first_User_city` DATETIME, `__first_User_app_version` DATETIME, `__first_User_plan` DATETIME, `__first_User_first_platform` DATETIME, `__first_Device_User` DATETIME, `__first_Session_User` DATETIME, `__first_User_Campaign` DATETIME);

CREATE TABLE IF NOT EXISTS `anchor`.`Device_current` (`id` INT64 NOT NULL, `device_id` STRING, `model` STRING, `__at_model` DATETIME, `os` STRING, `__at_os` DATETIME, `__prev_os` STRING, `__prev_at_os` DATETIME, `platform` STRING, `__at_platform` DATETIME, `__first_Device_model` DATETIME, `__first_Device_os` DATETIME, `__first_Device_platform` DATETIME, `__first_Device_User` DATETIME);

CREATE TABLE IF NOT EXISTS `anchor`.`Session_current` (`id` INT64 NOT NULL, `session_id` INT64, `app_version` STRING, `__at_app_version` DATETIME, `__first_Session_app_version` DATETIME, `__first_Session_User` DATETIME);

CREATE TABLE IF NOT EXISTS `anchor`.`Campaign_current` (`id` INT64 NOT NULL, `utm_campaign` STRING, `source` STRING, `__at_source` DATETIME, `__first_Campaign_source` DATETIME, `__first_User_Campaign` DATETIME);

CREATE TABLE IF NOT EXISTS `anchor`.`Account_current` (`id` INT64 NOT NULL, `user_id` STRING, `city` STRING, `__at_city` DATETIME, `__prev_city` STRING, `__prev_at_city` DATETIME, `plan` STRING, `__at_plan` DATETIME, `__prev_plan` STRING, `__prev_at_plan` DATETIME, `__first_Account_city` DATETIME, `__first_Account_plan` DATETIME);

CREATE TABLE IF NOT EXISTS `meta`.`compiled_loads` (`step` STRING NOT NULL, `target` STRING NOT NULL, `model` STRING NOT NULL, `load_id` INT64 NOT NULL);
