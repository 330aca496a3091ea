// Memory store: an Azure Cosmos DB for NoSQL account (serverless by default, keys switched off),
// the database and the container the store code expects, and the one data-plane role the bot's
// identity needs to read and write items there.

@description('Name of the Cosmos DB account (globally unique, lowercase).')
param accountName string

@description('Region of the account.')
param location string

@description('Tags for the account.')
param tags object

@description('Serverless (pay per request) when true; provisioned autoscale throughput when false.')
param serverless bool

@description('Largest autoscale throughput (RU/s) of the database when not serverless.')
@minValue(1000)
param autoscaleMaxThroughput int

@description('Database name: what the app reads as COSMOS_DATABASE.')
param databaseName string

@description('Container name: what the app reads as COSMOS_CONTAINER.')
param containerName string

@description('Container default time to live in seconds; each item also carries its own ttl.')
@minValue(1)
param defaultTtlSeconds int

@description('Cosmos DB full-text search on message texts (see main.bicep cosmosFullTextSearch).')
param fullTextSearch bool

@description('Cosmos DB vector search on embeddings, serverless only (see main.bicep cosmosVectorSearch).')
param vectorSearch bool

@description('Dimensions of the embeddings the vector search takes: the embeddings model\'s.')
@minValue(1)
@maxValue(4096)
param embeddingsDimensions int

@description('Principal id of the identity that reads and writes memory.')
param dataContributorPrincipalId string

// Must equal PARTITION_KEY_PATH in memory/cosmos/ids.py: every memory key is one partition.
var partitionKeyPath = '/pk'
// Cosmos DB Built-in Data Contributor: read, write and delete items, read metadata; no keys,
// no control plane.
var dataContributorRoleId = '00000000-0000-0000-0000-000000000002'
// Full-text search (FullTextScore, BM25) for the store's search of old messages, and vector search
// (VectorDistance) for its search by meaning: the container's policies and indexes below need them
// on the account. Vector search does not support a database with shared (provisioned) throughput.
var vectorSearchOn = serverless ? vectorSearch : false
var fullTextCapabilities = fullTextSearch ? [
  {
    name: 'EnableNoSQLFullTextSearch'
  }
] : []
var vectorCapabilities = vectorSearchOn ? [
  {
    name: 'EnableNoSQLVectorSearch'
  }
] : []
// Index only what the store's queries use (memory/cosmos/provisioning.py INDEXING_POLICY):
// message texts and embeddings cost no index writes unless a search below reads them.
var indexingPolicy = {
  indexingMode: 'consistent'
  automatic: true
  includedPaths: [
    {
      path: '/pk/?'
    }
    {
      path: '/kind/?'
    }
    {
      path: '/terms/[]/?'
    }
    {
      path: '/seq/?'
    }
  ]
  excludedPaths: [
    {
      path: '/*'
    }
    {
      path: '/"_etag"/?'
    }
  ]
}
// Message texts (/content) for full-text search: where the search by terms stops at its bound,
// the store asks FullTextScore for older matches (memory/cosmos/provisioning.py FULL_TEXT_PATH).
var fullTextIndexing = fullTextSearch ? {
  fullTextIndexes: [
    {
      path: '/content'
    }
  ]
} : {}
var fullTextPolicy = fullTextSearch ? {
  fullTextPolicy: {
    defaultLanguage: 'en-US'
    fullTextPaths: [
      {
        path: '/content'
        language: 'en-US'
      }
    ]
  }
} : {}
// Embeddings as numbers (/embedding) for vector search, which finds a person's closest messages in
// the whole archive (memory/cosmos/provisioning.py VECTOR_PATH). quantizedFlat: exact enough for
// one person's partition, up to 4,096 dimensions (flat stops at 505).
var vectorIndexing = vectorSearchOn ? {
  vectorIndexes: [
    {
      path: '/embedding'
      type: 'quantizedFlat'
    }
  ]
} : {}
var vectorEmbeddingPolicy = vectorSearchOn ? {
  vectorEmbeddingPolicy: {
    vectorEmbeddings: [
      {
        path: '/embedding'
        dataType: 'float32'
        distanceFunction: 'cosine'
        dimensions: embeddingsDimensions
      }
    ]
  }
} : {}
var serverlessCapabilities = [
  {
    name: 'EnableServerless'
  }
]
var provisionedOptions = {
  autoscaleSettings: {
    maxThroughput: autoscaleMaxThroughput
  }
}

var containerResource = {
  id: containerName
  partitionKey: {
    paths: [
      partitionKeyPath
    ]
    kind: 'Hash'
    version: 2
  }
  // Time to live must be on for the items' own ttl to count.
  defaultTtl: defaultTtlSeconds
  indexingPolicy: union(indexingPolicy, fullTextIndexing, vectorIndexing)
}

resource account 'Microsoft.DocumentDB/databaseAccounts@2025-04-15' = {
  // checkov:skip=CKV_AZURE_99: App Service without VNet integration reaches Cosmos DB over its public endpoint; every request needs an Entra ID token (local auth is off). See deployment/README.md, Hardening.
  // checkov:skip=CKV_AZURE_101: Public network access stays on because the web app is not in a virtual network; a private endpoint needs VNet integration and a private DNS zone. Keys are off, so every request still needs an Entra ID token. See deployment/README.md, Hardening.
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    capabilities: concat(serverless ? serverlessCapabilities : [], fullTextCapabilities, vectorCapabilities)
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
    enableAutomaticFailover: false
    enableMultipleWriteLocations: false
    enableFreeTier: false
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2025-04-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    options: serverless ? {} : provisionedOptions
  }
}

resource container 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2025-04-15' = {
  parent: database
  name: containerName
  properties: {
    resource: union(containerResource, fullTextPolicy, vectorEmbeddingPolicy)
  }
}

resource dataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2025-04-15' = {
  parent: account
  name: guid(account.id, dataContributorPrincipalId, dataContributorRoleId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    principalId: dataContributorPrincipalId
    // Only the bot's database, not the whole account.
    scope: '${account.id}/dbs/${database.name}'
  }
}

output accountName string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
output containerName string = container.name
