terraform {
  required_version = ">= 1.6.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
  }
}

# Credentials come from the workflow's OIDC role (aws-actions/configure-aws-credentials).
provider "aws" {
  region = "eu-west-1"
}
