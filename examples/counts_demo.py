"""Count a real data set by facet, label and prediction with clarion's engine (placeholder demo
until `clarion analyze` lands): UCI heart disease from scikit-learn-free numpy is not bundled,
so this uses a fixed synthetic set."""
