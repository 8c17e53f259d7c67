# Quickstart: a 3-broker Ferry cluster over three zones, and its bootstrap servers.
#
#   ferry dev                                   # prints the API address and an admin token
#   export FERRY_ENDPOINT=http://127.0.0.1:7070 FERRY_TOKEN=<admin token>
#   export TF_CLI_CONFIG_FILE=$PWD/dev.tfrc     # see docs/terraform.md: dev_overrides, no registry
#   terraform apply
#   kcat -b "$(terraform output -raw bootstrap_brokers)" -L

terraform {
  required_providers {
    ferry = {
      source = "ferry.dev/ferry/ferry"
    }
  }
}

# endpoint and token default to FERRY_ENDPOINT and FERRY_TOKEN.
provider "ferry" {}

resource "ferry_cluster" "orders" {
  name         = "orders"
  broker_count = 3 # grow it (a multiple of the zones) and apply: brokers are added in place
  zones        = ["zone-a", "zone-b", "zone-c"]

  # Optional; these are the defaults. Changing them replaces the cluster (the API cannot
  # change them in place yet).
  kafka_version            = "3.9.0"
  controller_count         = 3
  storage_per_broker_bytes = 1073741824 # 1 GiB

  broker_config = {
    "num.partitions"   = "3"
    "log.retention.ms" = "604800000"
  }

  # Updated in place.
  tags = {
    team = "payments"
  }

  # Destroy is refused until this is false (and applied).
  deletion_protection = true

  timeouts {
    create = "10m"
    update = "10m"
    delete = "10m"
  }
}

# The data sources, for clusters managed elsewhere.
data "ferry_cluster" "orders" {
  name = ferry_cluster.orders.name
}

data "ferry_bootstrap_brokers" "orders" {
  cluster_id = ferry_cluster.orders.id
}

output "cluster_id" {
  value = ferry_cluster.orders.id
}

output "bootstrap_brokers" {
  value = ferry_cluster.orders.bootstrap_brokers
}

output "state" {
  value = data.ferry_cluster.orders.state
}

output "bootstrap_brokers_from_data_source" {
  value = data.ferry_bootstrap_brokers.orders.bootstrap_brokers
}
