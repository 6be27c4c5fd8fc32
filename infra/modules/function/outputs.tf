output "function_name" {
  description = "The function's name."
  value       = aws_lambda_function.function.function_name
}

output "function_arn" {
  description = "The function's ARN."
  value       = aws_lambda_function.function.arn
}

output "role_name" {
  description = "The function's execution role."
  value       = aws_iam_role.function.name
}

output "log_group_name" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.function.name
}
