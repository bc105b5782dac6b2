-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d):
-- one database per service, so neither can read the other's tables.
CREATE DATABASE accounts;
CREATE DATABASE notifications;
