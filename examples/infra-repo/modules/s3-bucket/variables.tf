# Inputs of the s3-bucket module. TfPilot's catalogue (registry/s3-bucket.toml) must match
# this file: `tfpilot registry check --modules modules` fails CI when they drift apart.

variable "bucket_name" {
  type        = string
  description = "The bucket name (TfPilot derives it: <project>-<environment>-<name>)."
}

variable "versioning_enabled" {
  type        = bool
  default     = false
  description = "Keep every version of every object."
}

variable "expiration_days" {
  type        = number
  default     = null
  description = "Delete objects this many days after they were written; null keeps them."
}

variable "force_destroy" {
  type        = bool
  default     = false
  description = "Allow destroying the bucket while it still holds objects."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource (TfPilot adds ManagedBy, TfPilotRequestId, Project, Environment)."
}
