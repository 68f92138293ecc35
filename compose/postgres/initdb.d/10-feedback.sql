-- The API's feedback store (app/feedback.py) in compose/scale.yml: a database of its own beside
-- MLflow's, so that either can move to a server of its own. The postgres image runs this file
-- once, on an empty data folder, as POSTGRES_USER (mlflow), who then owns the database
-- (scale.yml says why). A data folder made before this file existed: see compose/README.md.
CREATE DATABASE feedback;
