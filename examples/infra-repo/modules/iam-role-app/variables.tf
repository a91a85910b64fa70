# Inputs of the iam-role-app module. TfPilot's catalogue (registry/iam-role-app.toml) must
# match this file: `tfpilot registry check --modules modules` fails CI when they drift apart.

variable "role_name" {
  type        = string
  description = "The role name (TfPilot derives it: <project>-<environment>-<name>)."
}

variable "trusted_service" {
  type        = string
  default     = "ecs-tasks.amazonaws.com"
  description = "The AWS service principal allowed to assume the role."
}

variable "managed_policy_arns" {
  type        = list(string)
  default     = []
  description = "ARNs of managed policies to attach."
}

variable "max_session_duration" {
  type        = number
  default     = 3600
  description = "The longest session, in seconds."
}

variable "description" {
  type        = string
  default     = null
  description = "A description shown in the IAM console."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource (TfPilot adds ManagedBy, TfPilotRequestId, Project, Environment)."
}
