# Inputs of the sqs-queue module. TfPilot's catalogue (registry/sqs-queue.toml) must match
# this file: `tfpilot registry check --modules modules` fails CI when they drift apart.

variable "queue_name" {
  type        = string
  description = "The queue name, ending in .fifo for FIFO queues (TfPilot derives it)."
}

variable "dead_letter_queue_name" {
  type        = string
  description = "The dead-letter queue's name (TfPilot derives it); used only when dead_letter_queue_enabled."
}

variable "fifo" {
  type        = bool
  default     = false
  description = "Create a FIFO queue."
}

variable "visibility_timeout_seconds" {
  type        = number
  default     = 30
  description = "How long a received message stays hidden from other consumers."
}

variable "message_retention_seconds" {
  type        = number
  default     = 345600
  description = "How long the queue keeps an undeleted message."
}

variable "delay_seconds" {
  type        = number
  default     = 0
  description = "How long each new message is held back."
}

variable "dead_letter_queue_enabled" {
  type        = bool
  default     = false
  description = "Create a dead-letter queue for messages received max_receive_count times."
}

variable "max_receive_count" {
  type        = number
  default     = 5
  description = "Receives before a message moves to the dead-letter queue."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource (TfPilot adds ManagedBy, TfPilotRequestId, Project, Environment)."
}
