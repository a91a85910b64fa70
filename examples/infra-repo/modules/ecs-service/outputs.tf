output "service_name" {
  description = "The ECS service's name."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "The task definition's ARN."
  value       = aws_ecs_task_definition.this.arn
}

output "log_group_name" {
  description = "The CloudWatch log group of the service."
  value       = aws_cloudwatch_log_group.this.name
}
