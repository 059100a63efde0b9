-- attack: a syntax error (the runbook does not even compile)
return runbook {
  name = "attack-load_syntax_error", title = "syntax", start = "a"
  steps = {},
}
