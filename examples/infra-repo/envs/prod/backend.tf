# State for the prod environment: S3, encrypted, with a DynamoDB table as the lock.
# Create the bucket and table once (outside this root) before the first `terraform init`.

terraform {
  backend "s3" {
    bucket         = "acme-core-terraform-state"
    key            = "core/prod/terraform.tfstate"
    region         = "eu-west-1"
    dynamodb_table = "acme-core-terraform-locks"
    encrypt        = true
  }
}
