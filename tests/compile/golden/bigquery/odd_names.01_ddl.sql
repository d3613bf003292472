CREATE SCHEMA IF NOT EXISTS `raw`;

CREATE SCHEMA IF NOT EXISTS `staging`;

CREATE SCHEMA IF NOT EXISTS `anchor`;

CREATE SCHEMA IF NOT EXISTS `marts`;

CREATE SCHEMA IF NOT EXISTS `meta`;

CREATE TABLE IF NOT EXISTS `raw`.`shop_records` (`load_id` INT64 NOT NULL, `source` STRING NOT NULL, `stream` STRING NOT NULL, `origin` STRING NOT NULL, `line_no` INT64 NOT NULL, `received_at` DATETIME NOT NULL, `record` STRING NOT NULL);

CREATE TABLE IF NOT EXISTS `raw`.`__landing_shop_records` (`record` STRING);

CREATE TABLE IF NOT EXISTS `staging`.`Order` (`load_id` INT64 NOT NULL, `select` INT64, `userId` STRING, `from` DATETIME, `total` NUMERIC(12, 2), `email` STRING, `ref` STRING, `day` DATE, `payload` JSON);

CREATE TABLE IF NOT EXISTS `staging`.`Line` (`load_id` INT64 NOT NULL, `line_no_` INT64, `select` INT64, `sku` STRING, `userId` STRING, `from` DATETIME);

CREATE TABLE IF NOT EXISTS `anchor`.`Customer` (`id` INT64 NOT NULL, `userId` STRING NOT NULL, `load_id` INT64 NOT NULL, `loaded_at` DATETIME NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Sku` (`id` INT64 NOT NULL, `sku` STRING NOT NULL, `load_id` INT64 NOT NULL, `loaded_at` DATETIME NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Customer_Total` (`id` INT64 NOT NULL, `value` NUMERIC(12, 2) NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Customer_firstDay` (`id` INT64 NOT NULL, `value` DATE NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Customer_email` (`id` INT64 NOT NULL, `value` STRING NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Customer_Sku` (`customer_id` INT64 NOT NULL, `sku_id` INT64 NOT NULL, `changed_at` DATETIME NOT NULL, `load_id` INT64 NOT NULL);

CREATE TABLE IF NOT EXISTS `anchor`.`Customer_current` (`id` INT64 NOT NULL, `userId` STRING, `Total` NUMERIC(12, 2), `__at_Total` DATETIME, `__prev_Total` NUMERIC(12, 2), `__prev_at_Total` DATETIME, `firstDay` DATE, `__at_firstDay` DATETIME, `email` STRING, `__at_email` DATETIME, `__first_Customer_Total` DATETIME, `__first_Customer_firstDay` DATETIME, `__first_Customer_email` DATETIME, `__first_Customer_Sku` DATETIME);

CREATE TABLE IF NOT EXISTS `anchor`.`Sku_current` (`id` INT64 NOT NULL, `sku` STRING, `__first_Customer_Sku` DATETIME);

CREATE TABLE IF NOT EXISTS `meta`.`compiled_loads` (`step` STRING NOT NULL, `target` STRING NOT NULL, `model` STRING NOT NULL, `load_id` INT64 NOT NULL);
