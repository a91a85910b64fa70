# Inputs of the ecs-service module. TfPilot's catalogue (registry/ecs-service.toml) must match
# this file: `tfpilot registry check --modules modules` fails CI when they drift apart.

variable "service_name" {
  type        = string
  description = "The service name, also the task family and log group suffix (TfPilot derives it)."
}

variable "execution_role_name" {
  type        = string
  description = "The task execution role's name (TfPilot derives it)."
}

variable "cluster_name" {
  type        = string
  description = "The existing ECS cluster the service runs in."
}

variable "image" {
  type        = string
  description = "The container image."
}

variable "container_port" {
  type        = number
  default     = 8080
  description = "The port the container listens on."
}

variable "cpu" {
  type        = number
  default     = 256
  description = "Task CPU in CPU units (1024 = 1 vCPU)."
}

variable "memory" {
  type        = number
  default     = 512
  description = "Task memory in MiB."
}

variable "desired_count" {
  type        = number
  default     = 1
  description = "How many tasks to keep running."
}

variable "subnet_ids" {
  type        = list(string)
  description = "The subnets the tasks run in."
}

variable "security_group_ids" {
  type        = list(string)
  default     = []
  description = "Security groups for the tasks; empty means the VPC's default group."
}

variable "assign_public_ip" {
  type        = bool
  default     = false
  description = "Give each task a public IP."
}

variable "environment_variables" {
  type        = map(string)
  default     = {}
  description = "Environment variables for the container (not for secrets)."
}

variable "log_retention_days" {
  type        = number
  default     = 30
  description = "How long CloudWatch keeps the logs."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource (TfPilot adds ManagedBy, TfPilotRequestId, Project, Environment)."
}
