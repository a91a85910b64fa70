output "queue_url" {
  description = "The queue's URL."
  value       = aws_sqs_queue.this.url
}

output "queue_arn" {
  description = "The queue's ARN."
  value       = aws_sqs_queue.this.arn
}

output "dead_letter_queue_arn" {
  description = "The dead-letter queue's ARN, or null."
  value       = var.dead_letter_queue_enabled ? aws_sqs_queue.dead_letter[0].arn : null
}
