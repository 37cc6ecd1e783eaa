// A monthly cost budget for one environment's resource groups, notifying at 50, 75 and 90% of
// actual spend and at 100% of both actual and forecast spend.
targetScope = 'subscription'

param environment string

@description('Monthly amount in the billing currency.')
@minValue(1)
param amount int

@description('First day of the first budget month, e.g. 2026-01-01 (must not be in the past month).')
param startDate string

param resourceGroupNames array
param contactEmails array
param actionGroupId string

var notifications = {
  'actual-50': {
    enabled: true
    operator: 'GreaterThanOrEqualTo'
    threshold: 50
    thresholdType: 'Actual'
    contactEmails: contactEmails
    contactGroups: [
      actionGroupId
    ]
  }
  'actual-75': {
    enabled: true
    operator: 'GreaterThanOrEqualTo'
    threshold: 75
    thresholdType: 'Actual'
    contactEmails: contactEmails
    contactGroups: [
      actionGroupId
    ]
  }
  'actual-90': {
    enabled: true
    operator: 'GreaterThanOrEqualTo'
    threshold: 90
    thresholdType: 'Actual'
    contactEmails: contactEmails
    contactGroups: [
      actionGroupId
    ]
  }
  'actual-100': {
    enabled: true
    operator: 'GreaterThanOrEqualTo'
    threshold: 100
    thresholdType: 'Actual'
    contactEmails: contactEmails
    contactGroups: [
      actionGroupId
    ]
  }
  'forecasted-100': {
    enabled: true
    operator: 'GreaterThanOrEqualTo'
    threshold: 100
    thresholdType: 'Forecasted'
    contactEmails: contactEmails
    contactGroups: [
      actionGroupId
    ]
  }
}

resource budget 'Microsoft.Consumption/budgets@2023-11-01' = {
  name: 'budget-council-${environment}'
  properties: {
    category: 'Cost'
    amount: amount
    timeGrain: 'Monthly'
    timePeriod: {
      startDate: startDate
    }
    filter: {
      dimensions: {
        name: 'ResourceGroupName'
        operator: 'In'
        values: resourceGroupNames
      }
    }
    notifications: notifications
  }
}

output budgetName string = budget.name
