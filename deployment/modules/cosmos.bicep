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
// on the account.
var searchCapabilities = [
  {
    name: 'EnableNoSQLFullTextSearch'
  }
  {
    name: 'EnableNoSQLVectorSearch'
  }
]
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
    capabilities: concat(serverless ? serverlessCapabilities : [], searchCapabilities)
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
    resource: {
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
      // Message texts (/content) get Cosmos DB's full-text search: where the search by terms
      // stops at its bound, the store asks FullTextScore for older matches
      // (memory/cosmos/provisioning.py FULL_TEXT_PATH).
      fullTextPolicy: {
        defaultLanguage: 'en-US'
        fullTextPaths: [
          {
            path: '/content'
            language: 'en-US'
          }
        ]
      }
      // Embeddings (/embedding, as numbers) get Cosmos DB's vector search, which finds a person's
      // closest messages in the whole archive (memory/cosmos/provisioning.py VECTOR_PATH).
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
      // Index only what the store's queries use (memory/cosmos/provisioning.py INDEXING_POLICY),
      // the texts for full-text search and the embeddings for vector search.
      indexingPolicy: {
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
        fullTextIndexes: [
          {
            path: '/content'
          }
        ]
        // quantizedFlat: exact enough for one person's partition, up to 4,096 dimensions (flat
        // stops at 505).
        vectorIndexes: [
          {
            path: '/embedding'
            type: 'quantizedFlat'
          }
        ]
      }
    }
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
